"""LoRA on the attention projections: the intrusive baseline AdaLink is compared with (Hu et al., 2021).

Each adapted weight W (out, in) becomes W + (alpha / r) B A with A (r, in) small and random and B (out, r) zero, so
an untrained LoRA is the base model too. The projections adapted in every block are the ones S-LoRA-style serving
batches (and `../shared/bench/gpu_anchors.py` measures): the fused q/k/v projection and the output projection,
- image tower: `blocks.{i}.attn.qkv.weight` (3D, D) and `blocks.{i}.attn.proj.weight` (D, D);
- text tower: `transformer.resblocks.{i}.attn.in_proj_weight` (3D, D) and `....attn.out_proj.weight` (D, D).
Implemented as `torch.nn.utils.parametrize` parametrizations, so the towers' own forward code runs unchanged and
the original weights stay frozen tensors (`parametrizations.<name>.original`).
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn
from torch.nn.utils import parametrize

from training.tipsv2.layers import Block, ResidualAttentionBlock
from training.tipsv2.model import TIPSv2


class LoRADelta(nn.Module):
    """The parametrization W -> W + scale * B @ A."""

    def __init__(
        self, out_features: int, in_features: int, rank: int, alpha: float, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.scale = alpha / rank
        bound = 1.0 / math.sqrt(in_features)
        self.A = nn.Parameter(torch.empty(rank, in_features).uniform_(-bound, bound, generator=generator))
        self.B = nn.Parameter(torch.zeros(out_features, rank))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.scale * (self.B @ self.A)


def attention_weights(model: TIPSv2, modality: str) -> list[tuple[nn.Module, str]]:
    """(module, parameter name) of every attention projection LoRA adapts in one tower."""
    pairs: list[tuple[nn.Module, str]] = []
    if modality == "image":
        for block in cast("list[Block]", list(model.visual.blocks)):
            pairs += [(block.attn.qkv, "weight"), (block.attn.proj, "weight")]
        return pairs
    if modality == "text":
        for text_block in cast("list[ResidualAttentionBlock]", list(model.text.transformer.resblocks)):
            pairs += [(text_block.attn, "in_proj_weight"), (text_block.attn.out_proj, "weight")]
        return pairs
    raise ValueError(f"unknown modality {modality!r}")


def add_lora(
    model: TIPSv2,
    modalities: tuple[str, ...],
    rank: int,
    alpha: float | None = None,
    generator: torch.Generator | None = None,
) -> list[nn.Parameter]:
    """Adds LoRA to `model` in place (freeze it first); returns the new trainable parameters (A and B of each).

    `alpha` defaults to `rank` (scale 1), so the effective step size does not depend on the rank.
    """
    params: list[nn.Parameter] = []
    for modality in modalities:
        for module, name in attention_weights(model, modality):
            weight: torch.Tensor = getattr(module, name)
            out_features, in_features = weight.shape
            delta = LoRADelta(out_features, in_features, rank, float(alpha or rank), generator).to(weight.device)
            parametrize.register_parametrization(module, name, delta)
            params += [delta.A, delta.B]
    return params
