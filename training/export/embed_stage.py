"""Weights of the embedding stages that run ahead of the trunks in Triton, as safetensors (never pickle).

Text: the token table pre-multiplied by nothing (the stage applies sqrt(D) itself, as the model does) and the fixed
position table. Image: the patch projection as a (D, 3*14*14) matrix in the conv's (C, kh, kw) order, its bias, the
CLS1 token with its position, CLS2, and one positional table per served patch grid, interpolated here with torch so
that the torch-free stage reproduces `interpolate_pos_encoding` exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

from training.tipsv2.model import TIPSv2


def text_embed_arrays(model: TIPSv2) -> dict[str, np.ndarray]:
    text = model.text
    return {
        "token_embedding": text.token_embedding.weight.detach().float().numpy(),
        "positions": text.positions.detach().float().numpy(),
        "embedding_scale": np.asarray([text.cfg.embed_dim**0.5], dtype=np.float32),
    }


def image_embed_arrays(model: TIPSv2, grids: Iterable[int]) -> dict[str, np.ndarray]:
    visual = model.visual
    proj = visual.patch_embed.proj
    assert proj.bias is not None  # the patch embedding has a bias in every TIPSv2 variant
    arrays = {
        "patch_weight": proj.weight.detach().float().reshape(proj.weight.shape[0], -1).numpy(),
        "patch_bias": proj.bias.detach().float().numpy(),
        "cls1": (visual.cls_token[0, 0] + visual.pos_embed[0, 0]).detach().float().numpy()[None],
        "cls2": visual.register_tokens[0].detach().float().numpy(),
        "patch_size": np.asarray([visual.cfg.patch_size], dtype=np.int32),
    }
    with torch.no_grad():
        for grid in sorted(set(grids)):
            table = visual.interpolate_pos_encoding(grid, grid)[0, 1:]
            arrays[f"pos_grid_{grid}"] = table.float().numpy()
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def save_arrays(arrays: dict[str, np.ndarray], path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(arrays, str(path), metadata=metadata)
    return path
