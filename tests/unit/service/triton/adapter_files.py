"""Adapter files for tests, written in the real format into the real store layout (as the gateway writes them)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from training.adalink.format import adapter_bytes, build_metadata


def random_adapter(rng: np.random.Generator, dim: int, rank: int, scale: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    down = (rng.standard_normal((rank, dim)) * scale / np.sqrt(dim)).astype(np.float32)
    up = (rng.standard_normal((dim, rank)) * scale).astype(np.float32)
    return down, up


def write_adapter(
    store: Path,
    tenant: str,
    name: str,
    version: int,
    parts: dict[str, tuple[np.ndarray, np.ndarray]],
    base_hash: str,
    activation: str = "identity",
    dtype: str = "float32",
) -> str:
    """Writes `{store}/{tenant}/{name}/v{version}-{digest}.safetensors` and returns its id."""
    rank, dim = next(iter(parts.values()))[0].shape
    tensors = {}
    for modality, (down, up) in parts.items():
        tensors[f"{modality}.down"] = down.astype(dtype)
        tensors[f"{modality}.up"] = up.astype(dtype)
    meta = build_metadata("tipsv2-test", base_hash, tuple(parts), rank, dim, activation, "test", dtype=dtype)
    data = adapter_bytes(tensors, meta)
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = store / tenant / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"v{version}-{digest}.safetensors").write_bytes(data)
    return f"{tenant}/{name}/{version}/{digest}"
