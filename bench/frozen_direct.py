"""The direct path as it was measured on the H200 on 2026-12-04 (issue 13's "direct eager" row), frozen.

The GPU benchmark's ratios of served over direct are only honest if "direct" cannot move with the code it is
compared against: when the shared stage or bank gets faster, the served path gets faster too, and a direct row
computed with the new code would hide a served path that is still slow. So this module keeps a copy of the serving
code of that day, outside `service/`: the float32 embedding stages, the adapter bank's `apply` building its index
tensors from Python lists on the device (a blocking copy each), the trunk called in bf16 with float32 hand-offs,
outputs fetched with `.cpu()`. Only the tower (the model library's blocks) and the bank's loading are shared.
Do not optimise this file: it is the baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

ACTIVATIONS = {
    "identity": lambda h: h,
    "relu": torch.relu,
    "gelu_tanh": lambda h: F.gelu(h, approximate="tanh"),
    "silu": F.silu,
}


class FrozenTextStage:
    def __init__(self, weights_path: str, device: torch.device | str) -> None:
        self.device = torch.device(device)
        arrays = load_file(weights_path, device=str(self.device))
        self.table = arrays["token_embedding"].float()
        self.positions = arrays["positions"].float()
        self.scale = float(arrays["embedding_scale"][0])

    def __call__(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids = ids.to(self.device, torch.long, non_blocking=True)
        embeddings = F.embedding(ids, self.table) * self.scale + self.positions[: ids.shape[1]]
        return embeddings, (ids != 0).float()


class FrozenImageStage:
    def __init__(self, weights_path: str, device: torch.device | str) -> None:
        self.device = torch.device(device)
        arrays = load_file(weights_path, device=str(self.device))
        self.weight_t = arrays["patch_weight"].float().t().contiguous()
        self.bias = arrays["patch_bias"].float()
        self.cls1 = arrays["cls1"].float()
        self.cls2 = arrays["cls2"].float()
        self.patch = int(arrays["patch_size"][0])
        self.pos = {int(k.rsplit("_", 1)[1]): v.float() for k, v in arrays.items() if k.startswith("pos_grid_")}
        self.dim = int(self.bias.shape[0])

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        B, S = pixels.shape[0], pixels.shape[1]
        grid, p = S // self.patch, self.patch
        x = pixels.to(self.device, non_blocking=True)
        x = x.reshape(B, grid, p, grid, p, 3).permute(0, 1, 3, 5, 2, 4).reshape(B, grid * grid, 3 * p * p)
        patches = (x.float() / 255.0) @ self.weight_t + self.bias + self.pos[grid]
        cls1 = self.cls1.expand(B, 1, self.dim)
        cls2 = self.cls2.reshape(1, 1, self.dim).expand(B, 1, self.dim)
        return torch.cat((cls1, cls2, patches), dim=1)


def frozen_apply(bank: Any, x: torch.Tensor, slots: Sequence[int]) -> torch.Tensor:
    """`DeviceAdapterBank.apply` of 2026-12-04, over a bank's stacked tensors."""
    rows = [i for i, s in enumerate(slots) if s]
    if not rows:
        return x
    full = len(rows) == len(slots)
    row_index = None if full else torch.tensor(rows, device=x.device)
    sub = x if row_index is None else x.index_select(0, row_index)
    slot_index = torch.tensor([slots[i] for i in rows], device=bank.device)
    down, up = bank.down.index_select(0, slot_index), bank.up.index_select(0, slot_index)
    hidden = torch.bmm(sub, down.transpose(1, 2).to(sub.dtype))
    names = [bank.activation[slots[i]] for i in rows]
    kinds = set(names) - {"identity"}
    if kinds and len(kinds) == 1 and len(set(names)) == 1:
        hidden = ACTIVATIONS[names[0]](hidden)
    elif kinds:
        out = hidden
        for kind in kinds:
            mask = torch.tensor([n == kind for n in names], device=hidden.device).view(-1, 1, 1)
            out = torch.where(mask, ACTIVATIONS[kind](hidden), out)
        hidden = out
    adapted = sub + torch.bmm(hidden, up.transpose(1, 2).to(sub.dtype))
    if row_index is None:
        return adapted
    return x.index_copy(0, row_index, adapted)


def frozen_step(
    modality: str, host: np.ndarray, ids: list[str], stage: Any, bank: Any, tower: Any, dtype: torch.dtype
) -> Callable[[], dict[str, torch.Tensor]]:
    """One batch the 2026-12-04 way: host array -> stage (fp32) -> bank -> trunk (dtype) -> `.float().cpu()`."""

    def step() -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            x = torch.from_numpy(host)
            if modality == "text":
                embeddings, mask = stage(x)
                embeddings = frozen_apply(bank, embeddings, bank.slots(ids))
                out = tower.trunk(embeddings.to(dtype), mask.to(dtype))
                return {"text_embedding": out.float().cpu()}
            tokens = frozen_apply(bank, stage(x), bank.slots(ids))
            out = tower.trunk(tokens.to(dtype))
            return {"cls1": out[:, 0].float().cpu()}

    return step
