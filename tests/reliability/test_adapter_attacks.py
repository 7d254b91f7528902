"""Hostile adapter files through the HTTP upload endpoint (multipart and raw), against the real gateway: each is
refused with a 4xx naming what is wrong, nothing is stored, nothing is unpickled, and the refusal is counted."""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import (
    ACME,
    metric_value,
    open_gateway,
    served_model_id,
    tenant_settings,
    unique_name,
)
from training.contracts.adapter_file import adapter_bytes, build_metadata

pytestmark = [pytest.mark.integration]
DIM, RANK = 64, 4
UNPICKLED = Path("/tmp/tipsv2-adapter-attack-unpickled")  # created only if a payload were ever unpickled


class Boom:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (UNPICKLED.touch, ())


@pytest.fixture(scope="module")
def gateway(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path
) -> Iterator[TestClient]:
    with open_gateway(tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store)) as client:
        yield client


def parts(model_id: str, dtype: type = np.float32, **meta: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    rng = np.random.default_rng(0)
    tensors = {
        f"{m}.{p}": (rng.standard_normal(shape) * 0.05).astype(dtype)
        for m in ("image", "text")
        for p, shape in (("down", (RANK, DIM)), ("up", (DIM, RANK)))
    }
    metadata = build_metadata("tipsv2-tiny", model_id, ("image", "text"), RANK, DIM, "relu", "attack")
    metadata.update(meta)
    return tensors, metadata


def valid(model_id: str) -> bytes:
    return adapter_bytes(*parts(model_id))


def with_tensor(model_id: str, name: str, array: np.ndarray) -> bytes:
    tensors, meta = parts(model_id)
    tensors[name] = array
    return adapter_bytes(tensors, meta)


def framed(header: bytes, payload: bytes = b"") -> bytes:
    """A safetensors frame around a header given verbatim."""
    return struct.pack("<Q", len(header)) + header + payload


def raw_header(header: dict, payload: bytes = b"") -> bytes:
    return framed(json.dumps(header).encode(), payload)


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def non_finite(model_id: str, value: float) -> bytes:
    tensors, meta = parts(model_id)
    tensors["text.up"][3, 1] = value
    return adapter_bytes(tensors, meta)


Make = Callable[[str], bytes]
ATTACKS: list[tuple[str, Make, str]] = [
    ("pickle payload", lambda m: pickle.dumps(Boom()), "not a safetensors file"),
    ("torch zip checkpoint", lambda m: zip_of({"archive/data.pkl": pickle.dumps(Boom())}), "not a safetensors file"),
    ("polyglot: adapter + zip", lambda m: valid(m) + zip_of({"x.pkl": pickle.dumps(Boom())}), "beyond its tensors"),
    ("polyglot: adapter + html", lambda m: valid(m) + b"<script>alert(1)</script>", "beyond its tensors"),
    ("wrong shape", lambda m: with_tensor(m, "text.down", np.zeros((RANK, DIM + 1), np.float32)), "shape"),
    ("wrong rank", lambda m: with_tensor(m, "text.up", np.zeros((DIM, RANK + 2), np.float32)), "shape"),
    ("float64 tensors", lambda m: adapter_bytes(*parts(m, dtype=np.float64)), "dtype"),
    ("int8 tensor", lambda m: with_tensor(m, "image.up", np.zeros((DIM, RANK), np.int8)), "dtype"),
    ("NaN", lambda m: non_finite(m, np.nan), "NaN or Inf"),
    ("Inf", lambda m: non_finite(m, np.inf), "NaN or Inf"),
    ("-Inf", lambda m: non_finite(m, -np.inf), "NaN or Inf"),
    ("huge header length", lambda m: struct.pack("<Q", 1 << 40) + b"{}", "header length"),
    ("header past the end", lambda m: struct.pack("<Q", 5000) + b"{}", "exceeds the file"),
    ("metadata bomb: keys", lambda m: adapter_bytes(*parts(m, **{f"k{i}": "x" for i in range(500)})), "metadata"),
    ("metadata bomb: value", lambda m: adapter_bytes(*parts(m, description="x" * 60_000)), "metadata"),
    ("wrong base hash", lambda m: valid("0123456789abcdef"), "trained for base model"),
    ("wrong width", lambda m: adapter_bytes(*parts(m, dim="32")), "shape"),
    ("extra tensor", lambda m: with_tensor(m, "text.backdoor", np.zeros((2, 2), np.float32)), "unexpected"),
    ("not a format we know", lambda m: adapter_bytes(*parts(m, format="lora")), "format"),
    ("duplicate header keys", lambda m: framed(b'{"__metadata__": {}, "a": {}, "a": {}}'), "unreadable header"),
    (
        "overlapping tensors",
        lambda m: raw_header(
            {
                "__metadata__": parts(m)[1],
                **{
                    f"{mod}.{p}": {"dtype": "F32", "shape": shape, "data_offsets": [0, 4 * RANK * DIM]}
                    for mod in ("image", "text")
                    for p, shape in (("down", [RANK, DIM]), ("up", [DIM, RANK]))
                },
            },
            b"\0" * (4 * RANK * DIM),
        ),
        "overlaps",
    ),
]


@pytest.mark.parametrize("raw", [False, True], ids=["multipart", "octet-stream"])
@pytest.mark.parametrize(("make", "reason"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_hostile_adapter_is_refused_with_a_clear_message(
    gateway: TestClient, make: Make, reason: str, raw: bool
) -> None:
    model_id = served_model_id(gateway)
    name, data = unique_name("attack"), make(model_id)
    before = metric_value(
        gateway.get("/metrics").text, "tipsv2_adapter_uploads_total", tenant="acme", outcome="invalid"
    )
    if raw:
        headers = {**ACME, "Content-Type": "application/octet-stream"}
        response = gateway.post(f"/v1/adapters?name={name}", content=data, headers=headers)
    else:
        response = gateway.post(
            "/v1/adapters", files={"file": ("a.safetensors", data)}, data={"name": name}, headers=ACME
        )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_adapter" and error["param"] == "file"
    assert error["message"].startswith("invalid adapter: ") and reason in error["message"], error["message"]
    assert gateway.get(f"/v1/adapters/{name}", headers=ACME).status_code == 404
    after = metric_value(gateway.get("/metrics").text, "tipsv2_adapter_uploads_total", tenant="acme", outcome="invalid")
    assert after == before + 1
    assert not UNPICKLED.exists(), "a payload was unpickled"
