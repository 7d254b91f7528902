"""Encodings shared by the inference routes: vectors, float16 arrays, the adapter echo, JSON bodies."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
from fastapi import Response

from service.gateway.adapters.registry import ResolvedAdapter
from service.gateway.schemas.common import AdapterUsed

JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    normalized: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return normalized


def encode(vector: np.ndarray, encoding_format: str) -> np.ndarray | str:
    """float -> a float32 array (a JSON list of numbers once `json_bytes` encodes it, in C); base64 -> little-endian
    float32 bytes, base64 (OpenAI's encoding)."""
    if encoding_format == "base64":
        return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode()
    return np.ascontiguousarray(vector, dtype=np.float32)


def encode_f16(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f2").tobytes()).decode()


def adapter_used(adapter: ResolvedAdapter | None) -> AdapterUsed | None:
    """What every inference response echoes: the adapter name and the version that served it (None: base model)."""
    return AdapterUsed(name=adapter.name, version=adapter.version) if adapter else None


def adapter_json(adapter: ResolvedAdapter | None) -> dict[str, Any] | None:
    """`adapter_used` as a plain document, for the responses encoded by `json_bytes`."""
    return {"name": adapter.name, "version": adapter.version} if adapter else None


def json_bytes(document: Any) -> bytes:
    """A response document (dicts, lists, numpy float32 arrays) as JSON, encoded by orjson in one C pass."""
    return orjson.dumps(document, option=JSON_OPTIONS)


def json_response(document: Any, status_code: int = 200) -> Response:
    return Response(json_bytes(document), status_code=status_code, media_type="application/json")
