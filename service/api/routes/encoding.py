"""Encodings shared by the inference routes: vectors, float16 arrays, the adapter echo."""

from __future__ import annotations

import base64

import numpy as np

from service.adapters.registry import ResolvedAdapter
from service.schemas.common import AdapterUsed


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    normalized: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return normalized


def encode(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    """float -> JSON list; base64 -> little-endian float32 bytes, base64 (OpenAI's encoding)."""
    if encoding_format == "base64":
        return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode()
    values: list[float] = np.asarray(vector, dtype=np.float32).tolist()  # C loop: 4x faster than a comprehension
    return values


def encode_f16(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f2").tobytes()).decode()


def adapter_used(adapter: ResolvedAdapter | None) -> AdapterUsed | None:
    """What every inference response echoes: the adapter name and the version that served it (None: base model)."""
    return AdapterUsed(name=adapter.name, version=adapter.version) if adapter else None
