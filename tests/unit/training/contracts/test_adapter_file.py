"""The adapter validator accepts well-formed adapters and refuses each kind of bad file with a message saying why."""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile

import numpy as np
import pytest

from training.contracts.adapter_file import (
    AdapterValidationError,
    adapter_bytes,
    build_metadata,
    load_adapter_arrays,
    validate_adapter,
)

D, R = 16, 4


def make(
    modalities: tuple[str, ...] = ("text",),
    rank: int = R,
    dim: int = D,
    dtype: type = np.float32,
    meta: dict[str, str] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    rng = np.random.default_rng(0)
    tensors = {}
    for m in modalities:
        tensors[f"{m}.down"] = rng.standard_normal((rank, dim)).astype(dtype)
        tensors[f"{m}.up"] = rng.standard_normal((dim, rank)).astype(dtype)
    metadata = build_metadata(
        "tipsv2-tiny",
        "abcdef0123456789",
        modalities,
        rank,
        dim,
        "relu",
        "classification:test",
        dtype=np.dtype(dtype).name,
    )
    metadata.update(meta or {})
    return tensors, metadata


def valid_bytes(**kwargs: object) -> bytes:
    return adapter_bytes(*make(**kwargs))  # type: ignore[arg-type]


def refuse(data: bytes, match: str, **kwargs: object) -> None:
    with pytest.raises(AdapterValidationError, match=match):
        validate_adapter(data, **kwargs)  # type: ignore[arg-type]


def raw_safetensors(header: dict, payload: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


def test_valid_adapter_round_trips_with_metadata() -> None:
    data = valid_bytes(modalities=("image", "text"))
    info = validate_adapter(data, base_hash="abcdef0123456789", dim=D)
    assert info.modalities == ("image", "text") and info.rank == R and info.activation == "relu"
    assert info.task == "classification:test" and info.base_model == "tipsv2-tiny"
    arrays = load_adapter_arrays(data)
    assert set(arrays) == {"image.down", "image.up", "text.down", "text.up"}
    tensors, _ = make(modalities=("image", "text"))
    assert np.array_equal(arrays["text.up"], tensors["text.up"])


def test_float16_adapter_is_accepted_and_served_as_float32() -> None:
    data = valid_bytes(dtype=np.float16)
    assert validate_adapter(data).dtype == "float16"
    assert load_adapter_arrays(data)["text.down"].dtype == np.float32


def test_pickle_payload_is_refused_without_unpickling() -> None:
    class Boom:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (pytest.fail, ("the validator unpickled the payload",))

    refuse(pickle.dumps(Boom()), "not a safetensors file")
    refuse(pickle.dumps({"text.down": np.zeros((R, D))}), "not a safetensors file")


def test_torch_style_zip_checkpoint_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"text.down": [1, 2]}))
    refuse(buffer.getvalue(), "not a safetensors file|header")


def test_polyglot_with_trailing_zip_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.pkl", b"evil")
    refuse(valid_bytes() + buffer.getvalue(), "beyond its tensors")


@pytest.mark.parametrize("junk", [b"", b"1234", b"\x00" * 64, b'{"a": 1}', b"\xff" * 100])
def test_non_safetensors_bytes_are_refused(junk: bytes) -> None:
    refuse(junk, "not a safetensors file|header")


def test_huge_header_is_refused_before_parsing() -> None:
    refuse(struct.pack("<Q", 1 << 40) + b"{}", "above the limit")


def test_metadata_bomb_is_refused() -> None:
    tensors, meta = make()
    meta.update({f"k{i}": "x" for i in range(100)})
    refuse(adapter_bytes(tensors, meta), "metadata too large")
    tensors, meta = make(meta={"description": "x" * 20_000})
    refuse(adapter_bytes(tensors, meta), "metadata too large")


def test_duplicate_header_keys_are_refused() -> None:
    raw = b'{"__metadata__": {}, "text.down": {}, "text.down": {}}'
    refuse(struct.pack("<Q", len(raw)) + raw, "unreadable header")


@pytest.mark.parametrize(("shape_down", "shape_up"), [((R, D + 1), (D + 1, R)), ((R, D), (D, R + 1)), ((R,), (D, R))])
def test_wrong_shapes_are_refused(shape_down: tuple, shape_up: tuple) -> None:
    _, meta = make()
    tensors = {"text.down": np.zeros(shape_down, np.float32), "text.up": np.zeros(shape_up, np.float32)}
    refuse(adapter_bytes(tensors, meta), "shape")


def test_width_mismatch_with_served_model_is_refused() -> None:
    refuse(valid_bytes(), "does not match the served model", dim=D * 2)


def test_wrong_dtype_is_refused() -> None:
    tensors, meta = make()
    tensors = {k: v.astype(np.float64) for k, v in tensors.items()}
    refuse(adapter_bytes(tensors, meta), "dtype")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(bad: float) -> None:
    tensors, meta = make()
    tensors["text.up"][0, 0] = bad
    refuse(adapter_bytes(tensors, meta), "NaN or Inf")


def test_base_hash_mismatch_is_refused() -> None:
    refuse(valid_bytes(), "trained for base model", base_hash="0000000000000000")


def test_oversize_file_is_refused() -> None:
    refuse(valid_bytes(), "above the limit", max_bytes=100)


def test_unknown_and_missing_tensors_are_refused() -> None:
    tensors, meta = make()
    tensors["text.extra"] = np.zeros((2, 2), np.float32)
    refuse(adapter_bytes(tensors, meta), "unexpected")
    tensors, meta = make()
    del tensors["text.up"]
    refuse(adapter_bytes(tensors, meta), "missing")


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("format", "pytorch", "format"),
        ("activation", "softmax", "activation"),
        ("rank", "lots", "malformed"),
        ("rank", "0", "rank"),
        ("modalities", "audio", "modalities"),
        ("created_at", "yesterday", "malformed"),
    ],
)
def test_bad_metadata_is_refused(key: str, value: str, match: str) -> None:
    refuse(valid_bytes(meta={key: value}), match)


def test_missing_metadata_is_refused() -> None:
    tensors, meta = make()
    del meta["base_hash"]
    refuse(adapter_bytes(tensors, meta), "lacks base_hash")


def test_overlapping_tensor_data_is_refused() -> None:
    size = 4 * R * D
    header = {
        "__metadata__": make()[1],
        "text.down": {"dtype": "F32", "shape": [R, D], "data_offsets": [0, size]},
        "text.up": {"dtype": "F32", "shape": [D, R], "data_offsets": [0, size]},
    }
    refuse(raw_safetensors(header, b"\x00" * size), "overlaps")
