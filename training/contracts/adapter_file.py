"""The AdaLink adapter file: safetensors with fixed tensor names and string metadata, and its validator.

Tensors, per adapted modality (`text`, `image`):
    {modality}.down  (r, D)   the down projection
    {modality}.up    (D, r)   the up projection (zero at initialisation: an untrained adapter is the base model)
The adapter maps the token sequence x the first transformer block sees to x + up(act(down(x))).

Metadata (safetensors `__metadata__`, all strings): format, format_version, base_model, base_hash (digest of the
base weights: the model_id Triton serves), modalities ("text", "image" or "image,text"), rank, dim, dtype,
activation, task, created_at (ISO 8601, UTC), optionally description.

The validator parses the safetensors header itself before any tensor is touched, so that a hostile file is refused
with a message saying what is wrong: it never unpickles (safetensors has no code path to do so, and nothing here
calls pickle or torch.load), refuses oversize files and headers, metadata bombs, unknown or missing tensors,
wrong shapes or dtypes, overlapping or trailing bytes (polyglot files), NaN/Inf, and a base-hash mismatch.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as load_safetensors_bytes
from safetensors.numpy import save as save_safetensors_bytes

from .activations import NAMES as ACTIVATIONS

FORMAT = "tipsv2-adalink"
FORMAT_VERSION = "1"
MODALITIES = ("image", "text")
DTYPE_NAMES = {"F32": "float32", "F16": "float16"}  # safetensors dtype -> metadata name
ITEMSIZE = {"F32": 4, "F16": 2}
REQUIRED_METADATA = (
    "format",
    "format_version",
    "base_model",
    "base_hash",
    "modalities",
    "rank",
    "dim",
    "dtype",
    "activation",
    "task",
    "created_at",
)
# Above any valid adapter: rank 256 on both modalities of the widest variant (g/14, D = 1536) is 6.3 MB in float32.
MAX_FILE_BYTES = 16 << 20
MAX_HEADER_BYTES = 64 << 10
MAX_METADATA_BYTES = 16 << 10
MAX_METADATA_KEYS = 32
MAX_RANK = 256


class AdapterValidationError(ValueError):
    """The file is not a valid adapter for this base model; the message says what is wrong."""


@dataclass(frozen=True)
class AdapterInfo:
    base_model: str
    base_hash: str
    modalities: tuple[str, ...]
    rank: int
    dim: int
    dtype: str
    activation: str
    task: str
    created_at: str
    description: str
    nbytes: int
    sha256: str

    def metadata(self) -> dict[str, str]:
        return {
            "base_model": self.base_model,
            "base_hash": self.base_hash,
            "modalities": ",".join(self.modalities),
            "rank": str(self.rank),
            "dim": str(self.dim),
            "dtype": self.dtype,
            "activation": self.activation,
            "task": self.task,
            "created_at": self.created_at,
            "description": self.description,
        }


def build_metadata(
    base_model: str,
    base_hash: str,
    modalities: tuple[str, ...],
    rank: int,
    dim: int,
    activation: str,
    task: str,
    dtype: str = "float32",
    description: str = "",
) -> dict[str, str]:
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "base_model": base_model,
        "base_hash": base_hash,
        "modalities": ",".join(sorted(modalities)),
        "rank": str(rank),
        "dim": str(dim),
        "dtype": dtype,
        "activation": activation,
        "task": task,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if description:
        meta["description"] = description
    return meta


def adapter_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    return bytes(save_safetensors_bytes({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata))


def save_adapter(path: str | Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> Path:
    path = Path(path)
    data = adapter_bytes(tensors, metadata)
    validate_adapter(data)  # never write a file the server would refuse
    path.write_bytes(data)
    return path


def validate_adapter(
    data: bytes, *, base_hash: str | None = None, dim: int | None = None, max_bytes: int = MAX_FILE_BYTES
) -> AdapterInfo:
    """Validates adapter bytes; returns what they hold or raises AdapterValidationError."""
    info, _ = load_adapter(data, base_hash=base_hash, dim=dim, max_bytes=max_bytes)
    return info


def load_adapter(
    data: bytes, *, base_hash: str | None = None, dim: int | None = None, max_bytes: int = MAX_FILE_BYTES
) -> tuple[AdapterInfo, dict[str, np.ndarray]]:
    """Validates adapter bytes and returns what they hold with their tensors as float32: what the gateway checks on
    upload and the Triton models' adapter banks check again when they load a file (a file on a shared volume is
    not trusted because the gateway once accepted it)."""
    if len(data) > max_bytes:
        raise AdapterValidationError(f"file is {len(data)} bytes, above the limit of {max_bytes}")
    header, metadata, header_length = _parse_header(data)
    info = _check_metadata(metadata, data)
    _check_tensors(header, info, len(data) - 8 - header_length)
    if base_hash is not None and info.base_hash != base_hash:
        raise AdapterValidationError(
            f"adapter was trained for base model {info.base_model} ({info.base_hash}), another base model than the "
            f"served {base_hash}"
        )
    if dim is not None and info.dim != dim:
        raise AdapterValidationError(f"adapter width {info.dim} does not match the served model's {dim}")
    return info, _checked_values(data)


def load_adapter_arrays(data: bytes) -> dict[str, np.ndarray]:
    """Tensors of validated adapter bytes, as float32."""
    return {name: _to_float32(array) for name, array in load_safetensors_bytes(data).items()}


def _parse_header(data: bytes) -> tuple[dict[str, Any], dict[str, str], int]:
    if len(data) < 8:
        raise AdapterValidationError("not a safetensors file: shorter than its 8-byte header length")
    (length,) = struct.unpack("<Q", data[:8])
    if length > MAX_HEADER_BYTES:
        raise AdapterValidationError(
            f"not a safetensors file: header length {length} is above the limit of {MAX_HEADER_BYTES} bytes"
        )
    if 8 + length > len(data):
        raise AdapterValidationError("not a safetensors file: header length exceeds the file")
    raw = data[8 : 8 + length]
    if not raw.startswith(b"{"):
        raise AdapterValidationError("not a safetensors file: the header is not a JSON object")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise AdapterValidationError(f"not a safetensors file: unreadable header ({exc})") from exc
    if not isinstance(header, dict):
        raise AdapterValidationError("not a safetensors file: the header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise AdapterValidationError("metadata missing or not a map of strings")
    if len(metadata) > MAX_METADATA_KEYS or len(json.dumps(metadata)) > MAX_METADATA_BYTES:
        raise AdapterValidationError(
            f"metadata too large (at most {MAX_METADATA_KEYS} keys, {MAX_METADATA_BYTES} bytes)"
        )
    return header, metadata, length


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate keys")
    return dict(pairs)


def _check_metadata(meta: dict[str, str], data: bytes) -> AdapterInfo:
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise AdapterValidationError(f"metadata lacks {', '.join(missing)}")
    if meta["format"] != FORMAT or meta["format_version"] != FORMAT_VERSION:
        raise AdapterValidationError(
            f"format {meta['format']!r} version {meta['format_version']!r} is not {FORMAT!r} version {FORMAT_VERSION}"
        )
    modalities = tuple(sorted(m for m in meta["modalities"].split(",") if m))
    if not modalities or any(m not in MODALITIES for m in modalities) or len(set(modalities)) != len(modalities):
        raise AdapterValidationError(f"modalities {meta['modalities']!r} must be text, image or both")
    try:
        rank, dim = int(meta["rank"]), int(meta["dim"])
        datetime.fromisoformat(meta["created_at"])
    except ValueError as exc:
        raise AdapterValidationError(f"metadata has a malformed number or date: {exc}") from exc
    if not 1 <= rank <= MAX_RANK or dim < 1:
        raise AdapterValidationError(f"rank must lie in [1, {MAX_RANK}] and dim be positive")
    if meta["activation"] not in ACTIVATIONS:
        raise AdapterValidationError(f"activation {meta['activation']!r} is not one of {', '.join(ACTIVATIONS)}")
    if meta["dtype"] not in DTYPE_NAMES.values():
        raise AdapterValidationError(f"dtype {meta['dtype']!r} is not float32 or float16")
    return AdapterInfo(
        meta["base_model"],
        meta["base_hash"],
        modalities,
        rank,
        dim,
        meta["dtype"],
        meta["activation"],
        meta["task"][:256],
        meta["created_at"],
        meta.get("description", "")[:1024],
        len(data),
        hashlib.sha256(data).hexdigest(),
    )


def _check_tensors(header: dict[str, Any], info: AdapterInfo, data_bytes: int) -> None:
    expected = {
        f"{m}.{p}": shape
        for m in info.modalities
        for p, shape in (("down", [info.rank, info.dim]), ("up", [info.dim, info.rank]))
    }
    if set(header) != set(expected):
        extra, missing = sorted(set(header) - set(expected)), sorted(set(expected) - set(header))
        raise AdapterValidationError(
            f"tensors do not match the metadata: unexpected {extra or 'none'}, missing {missing or 'none'}"
        )
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise AdapterValidationError(f"tensor {name}: malformed header entry")
        if DTYPE_NAMES.get(entry["dtype"]) != info.dtype:
            raise AdapterValidationError(f"tensor {name}: dtype {entry['dtype']} is not the declared {info.dtype}")
        if entry["shape"] != expected[name]:
            raise AdapterValidationError(f"tensor {name}: shape {entry['shape']} is not {expected[name]}")
        offsets = entry["data_offsets"]
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise AdapterValidationError(f"tensor {name}: malformed data offsets")
        begin, end = offsets
        if end - begin != ITEMSIZE[entry["dtype"]] * math.prod(entry["shape"]):
            raise AdapterValidationError(f"tensor {name}: data offsets do not match its shape")
        spans.append((begin, end))
    spans.sort()
    position = 0
    for begin, end in spans:
        if begin != position:
            raise AdapterValidationError("tensor data overlaps or leaves gaps")
        position = end
    if position != data_bytes:
        raise AdapterValidationError(f"file holds {data_bytes - position} bytes beyond its tensors (polyglot?)")


def _checked_values(data: bytes) -> dict[str, np.ndarray]:
    try:
        arrays = load_adapter_arrays(data)
    except Exception as exc:  # safetensors raises its own error types
        raise AdapterValidationError(f"tensor data unreadable: {exc}") from exc
    _check_values(arrays)
    return arrays


def _check_values(arrays: dict[str, np.ndarray]) -> None:
    for name, array in arrays.items():
        if not np.isfinite(array).all():
            raise AdapterValidationError(f"tensor {name} holds NaN or Inf values")


def _to_float32(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float32)
