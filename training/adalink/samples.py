"""Random adapters in the real file format: the one writer of test and benchmark adapters.

Valid files (the validator's every check passes) for a given base model, with parts drawn from a seeded generator
at chosen scales, as bytes (to upload) or written straight into the store layout (what Triton's banks read). Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.contracts.activations import NAMES as ACTIVATIONS
from training.contracts.adapter_file import adapter_bytes, build_metadata
from training.contracts.adapter_store import write_version

Part = tuple[np.ndarray, np.ndarray]  # (down (r, D), up (D, r)), float32


def random_part(rng: np.random.Generator, dim: int, rank: int, *, down_scale: float, up_scale: float) -> Part:
    """One modality's matrices: standard normal draws (down first, then up) times their scales."""
    down = (rng.standard_normal((rank, dim)) * down_scale).astype(np.float32)
    up = (rng.standard_normal((dim, rank)) * up_scale).astype(np.float32)
    return down, up


def adapter_from_parts(
    parts: dict[str, Part],
    base_hash: str,
    *,
    activation: str = "identity",
    dtype: str = "float32",
    base_model: str = "tipsv2-test",
    task: str = "test",
) -> bytes:
    """The file holding `parts` ({modality: (down, up)}), trained (as far as its metadata says) for `base_hash`."""
    rank, dim = next(iter(parts.values()))[0].shape
    tensors = {}
    for modality, (down, up) in parts.items():
        tensors[f"{modality}.down"] = down.astype(dtype)
        tensors[f"{modality}.up"] = up.astype(dtype)
    meta = build_metadata(base_model, base_hash, tuple(parts), rank, dim, activation, task, dtype=dtype)
    return adapter_bytes(tensors, meta)


def random_adapter(
    base_hash: str,
    dim: int,
    *,
    seed: int = 0,
    rank: int = 4,
    modalities: Sequence[str] = ("image", "text"),
    activation: str = "relu",
    down_scale: float = 0.05,
    up_scale: float = 0.5,
    base_model: str = "tipsv2-tiny",
    task: str = "test",
) -> bytes:
    """A valid adapter file with random parts for `modalities`, drawn from `seed` in that order."""
    rng = np.random.default_rng(seed)
    parts = {m: random_part(rng, dim, rank, down_scale=down_scale, up_scale=up_scale) for m in modalities}
    return adapter_from_parts(parts, base_hash, activation=activation, base_model=base_model, task=task)


def store_adapter(
    store: str | Path,
    tenant: str,
    name: str,
    version: int,
    parts: dict[str, Part],
    base_hash: str,
    *,
    activation: str = "identity",
    dtype: str = "float32",
) -> str:
    """The file holding `parts`, written into the store layout as `name`'s `version`; returns its adapter id."""
    data = adapter_from_parts(parts, base_hash, activation=activation, dtype=dtype)
    return str(write_version(store, tenant, name, version, data))


def store_random_adapters(
    store: str | Path, base_hash: str, dim: int, *, count: int, rank: int, up_scale: float, tenant: str, prefix: str
) -> list[str]:
    """`count` adapters (`{prefix}00`, `{prefix}01`, ...) with text and image parts, the activations taken in turn,
    written into the store layout; returns their ids. Their rows differ from the base by a few percent."""
    rng = np.random.default_rng(0)
    ids = []
    for i in range(count):
        parts = {m: random_part(rng, dim, rank, down_scale=dim**-0.5, up_scale=up_scale) for m in ("image", "text")}
        activation = ACTIVATIONS[i % len(ACTIVATIONS)]
        data = adapter_from_parts(parts, base_hash, activation=activation, base_model="bench", task="bench")
        ids.append(str(write_version(store, tenant, f"{prefix}{i:02d}", 1, data)))
    return ids
