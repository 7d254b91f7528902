"""AdamW over the trainable parameters, with weight decay only where it belongs.

No decay on biases, norms and LayerScale (1-D, as DINOv2), nor on the token and position tables and the learned
temperature (as timm / open_clip): shrinking those towards zero has no regularising meaning.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from training.train.config import OptimCfg

NO_DECAY_NAMES = ("cls_token", "register_tokens", "pos_embed", "mask_token", "log_temperature")


def decays(name: str, param: torch.Tensor) -> bool:
    return param.ndim >= 2 and not any(part in name for part in NO_DECAY_NAMES)


def param_groups(module: nn.Module) -> list[dict[str, object]]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in module.named_parameters():
        if param.requires_grad:
            (decay if decays(name, param) else no_decay).append(param)
    return [{"params": decay, "decay": True}, {"params": no_decay, "decay": False}]


def build_optimizer(module: nn.Module, cfg: OptimCfg) -> torch.optim.AdamW:
    groups = [g for g in param_groups(module) if g["params"]]
    if not groups:
        raise ValueError("nothing to train: every parameter is frozen")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


def apply_schedule(optimizer: torch.optim.Optimizer, lr: float, weight_decay: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
        group["weight_decay"] = weight_decay if group["decay"] else 0.0


def trainable(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return [p for p in params if p.requires_grad]
