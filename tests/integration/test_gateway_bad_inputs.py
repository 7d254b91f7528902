"""A corpus of bad inputs against every endpoint of the real gateway: each gets a 4xx with the one JSON error body
(naming what is wrong), never a 5xx, and the gateway keeps serving afterwards."""

from __future__ import annotations

import base64
import io
import json
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.gateway.core.config import LimitSettings
from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import ACME, open_gateway, png_bytes, tenant_settings

pytestmark = pytest.mark.integration

LIMITS = LimitSettings(
    max_body_bytes=2_000_000,
    max_items=8,
    max_text_chars=512,
    max_image_bytes=100_000,
    max_image_pixels=4_000_000,
    max_labels=8,
    max_templates=4,
    max_segment_windows=6,
)


@pytest.fixture(scope="module")
def gateway(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path
) -> Iterator[TestClient]:
    settings = tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store, limits=LIMITS)
    with open_gateway(settings) as client:
        yield client


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def header_bomb() -> bytes:
    """A 100-byte PNG that declares 50000 x 50000 pixels."""
    header = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def real_bomb() -> bytes:
    """A few-kilobyte PNG that decodes to 3000 x 2000 (above this gateway's 4 MP limit)."""
    buffer = io.BytesIO()
    Image.new("1", (3000, 2000)).save(buffer, format="PNG")
    return buffer.getvalue()


def noise_png(size: int = 250) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(size: tuple[int, int] = (120, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png_bytes(1, size))).save(buffer, format="JPEG")
    return buffer.getvalue()


GOOD = png_bytes(1, (120, 90))
BAD_FILES = {
    "random bytes": np.random.default_rng(1).bytes(2000),
    "truncated png": GOOD[: len(GOOD) // 2],
    "truncated jpeg": jpeg()[:600],
    "header-only png": GOOD[:33],
    "pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    "text": b"just some text, not an image",
}
# Every "too large" is a 413 (defect 6): above the pixel limit as above the byte limit.
TOO_MANY_PIXELS = {
    "decompression bomb (header)": header_bomb(),
    "decompression bomb (real)": real_bomb(),
}
OVERSIZED = noise_png()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


Call = Callable[[TestClient], Any]


def json_post(path: str, body: object) -> Call:
    return lambda client: client.post(path, json=body, headers=ACME)


def raw_post(path: str, content: bytes, content_type: str = "application/json") -> Call:
    return lambda client: client.post(path, content=content, headers={**ACME, "Content-Type": content_type})


def form_post(path: str, files: list[tuple[str, tuple[str, bytes]]], data: dict | None = None) -> Call:
    return lambda client: client.post(path, files=files, data=data or {}, headers=ACME)


def image_cases() -> list[tuple[str, Call, int, str]]:
    cases: list[tuple[str, Call, int, str]] = []
    for what, data in BAD_FILES.items():
        cases += [
            (f"embed/image json: {what}", json_post("/v1/embed/image", {"images": [b64(data)]}), 400, "invalid_image"),
            (
                f"embed/image multipart: {what}",
                form_post("/v1/embed/image", [("images", ("f", data))]),
                400,
                "invalid_image",
            ),
            (
                f"classify: {what}",
                json_post("/v1/classify", {"images": [b64(data)], "labels": ["a"]}),
                400,
                "invalid_image",
            ),
            (f"segment: {what}", json_post("/v1/segment", {"image": b64(data), "labels": ["a"]}), 400, "invalid_image"),
        ]
    for what, data in TOO_MANY_PIXELS.items():
        cases += [
            (f"embed/image: {what}", json_post("/v1/embed/image", {"images": [b64(data)]}), 413, "image_too_large"),
            (
                f"segment: {what}",
                json_post("/v1/segment", {"image": b64(data), "labels": ["a"]}),
                413,
                "image_too_large",
            ),
        ]
    cases += [
        ("oversized image json", json_post("/v1/embed/image", {"images": [b64(OVERSIZED)]}), 413, "image_too_large"),
        (
            "oversized image multipart",
            form_post("/v1/embed/image", [("images", ("f", OVERSIZED))]),
            413,
            "image_too_large",
        ),
        (
            "oversized segment image",
            json_post("/v1/segment", {"image": b64(OVERSIZED), "labels": ["a"]}),
            413,
            "image_too_large",
        ),
        ("empty image file", form_post("/v1/embed/image", [("images", ("f", b""))]), 400, "empty_input"),
        ("not base64", json_post("/v1/embed/image", {"images": ["%%%"]}), 400, "invalid_base64"),
        ("no images", json_post("/v1/embed/image", {"images": []}), 400, "empty_input"),
        ("too many images", json_post("/v1/embed/image", {"images": [b64(GOOD)] * 9}), 400, "too_many_inputs"),
        (
            "multipart without images",
            form_post("/v1/classify", [("labels", (None, b"a"))]),  # type: ignore[list-item]
            400,
            "empty_input",
        ),
        (
            "multipart with an unexpected file",
            form_post("/v1/classify", [("images", ("f", GOOD)), ("other", ("f", GOOD))], {"labels": "a"}),
            400,
            "invalid_request",
        ),
        (
            "two images for segment",
            form_post("/v1/segment", [("image", ("a", GOOD)), ("image", ("b", GOOD))], {"labels": "a"}),
            400,
            "empty_input",
        ),
        (
            "unsupported resolution",
            json_post("/v1/embed/image", {"images": [b64(GOOD)], "resolution": 100}),
            400,
            "unsupported_resolution",
        ),
    ]
    return cases


def text_cases() -> list[tuple[str, Call, int, str]]:
    return [
        ("invalid utf-8", raw_post("/v1/embeddings", b'{"input": "\xff\xfe bad"}'), 400, "malformed_json"),
        (
            "invalid utf-8 classify",
            raw_post("/v1/classify", b'{"labels": ["\xc3\x28"], "images": []}'),
            400,
            "malformed_json",
        ),
        ("lone surrogate", raw_post("/v1/embeddings", b'{"input": "a \\ud800 b"}'), 400, "invalid_text"),
        (
            "lone surrogate label",
            raw_post("/v1/classify", b'{"images": ["' + b64(GOOD).encode() + b'"], "labels": ["\\ud800"]}'),
            400,
            "invalid_text",
        ),
        ("over-long text", json_post("/v1/embeddings", {"input": "x" * 600}), 400, "input_too_long"),
        (
            "over-long label",
            json_post("/v1/classify", {"images": [b64(GOOD)], "labels": ["y" * 600]}),
            400,
            "input_too_long",
        ),
        ("too many texts", json_post("/v1/embeddings", {"input": ["a"] * 9}), 400, "too_many_inputs"),
        ("malformed json", raw_post("/v1/embeddings", b'{"input": '), 400, "malformed_json"),
        ("malformed json classify", raw_post("/v1/classify", b'{"labels": ['), 400, "malformed_json"),
        ("deeply nested json", raw_post("/v1/classify", b"[" * 100_000 + b"]" * 100_000), 400, "malformed_json"),
        ("json array body", raw_post("/v1/segment", b"[1, 2]"), 422, "validation_error"),
        (
            "wrong field type",
            json_post("/v1/classify", {"images": [b64(GOOD)], "labels": "cat"}),
            422,
            "validation_error",
        ),
        (
            "unknown field",
            json_post("/v1/segment", {"image": b64(GOOD), "labels": ["a"], "colour": 1}),
            422,
            "validation_error",
        ),
        (
            "form body",
            raw_post("/v1/classify", b"labels=a", "application/x-www-form-urlencoded"),
            415,
            "unsupported_content_type",
        ),
        ("text/plain body", raw_post("/v1/embed/image", b"hello", "text/plain"), 415, "unsupported_content_type"),
        (
            "multipart without boundary",
            raw_post("/v1/classify", b"--x\r\n", "multipart/form-data"),
            400,
            "invalid_request",
        ),
        (
            "file as a label",
            form_post("/v1/classify", [("images", ("f", GOOD)), ("labels", ("l", b"cat"))]),
            400,
            "invalid_request",
        ),
    ]


def zeroshot_cases() -> list[tuple[str, Call, int, str]]:
    image = b64(GOOD)
    wide = b64(png_bytes(2, (2000, 60)))
    return [
        (
            "label set too large",
            json_post("/v1/classify", {"images": [image], "labels": [f"l{i}" for i in range(9)]}),
            400,
            "too_many_labels",
        ),
        (
            "label set too large (segment)",
            json_post("/v1/segment", {"image": image, "labels": [f"l{i}" for i in range(9)]}),
            400,
            "too_many_labels",
        ),
        ("no labels", json_post("/v1/classify", {"images": [image], "labels": []}), 400, "empty_input"),
        ("blank label", json_post("/v1/classify", {"images": [image], "labels": ["a", "  "]}), 400, "empty_input"),
        (
            "duplicate labels",
            json_post("/v1/classify", {"images": [image], "labels": ["a", "a"]}),
            400,
            "duplicate_labels",
        ),
        (
            "template without slot",
            json_post("/v1/classify", {"images": [image], "labels": ["a"], "templates": ["x"]}),
            400,
            "invalid_template",
        ),
        (
            "template with a format field",
            json_post("/v1/classify", {"images": [image], "labels": ["a"], "templates": ["{} {0}"]}),
            400,
            "invalid_template",
        ),
        (
            "too many templates",
            json_post("/v1/classify", {"images": [image], "labels": ["a"], "templates": ["{}"] * 5}),
            400,
            "too_many_templates",
        ),
        (
            "unserved window",
            json_post("/v1/segment", {"image": image, "labels": ["a"], "window": 100}),
            400,
            "unsupported_resolution",
        ),
        (
            "stride above window",
            json_post("/v1/segment", {"image": image, "labels": ["a"], "mode": "slide", "stride": 500}),
            400,
            "invalid_stride",
        ),
        (
            "zero stride",
            json_post("/v1/segment", {"image": image, "labels": ["a"], "mode": "slide", "stride": 0}),
            422,
            "validation_error",
        ),
        (
            "unknown mode",
            json_post("/v1/segment", {"image": image, "labels": ["a"], "mode": "tiles"}),
            422,
            "validation_error",
        ),
        (
            "too many windows",
            json_post("/v1/segment", {"image": wide, "labels": ["a"], "mode": "slide"}),
            400,
            "too_many_windows",
        ),
    ]


def reference_cases() -> list[tuple[str, Call, int, str]]:
    image = b64(GOOD)
    return [
        ("unknown adapter", json_post("/v1/embeddings", {"input": "x", "adapter": "nope"}), 404, "adapter_not_found"),
        (
            "unknown adapter version",
            json_post("/v1/embeddings", {"input": "x", "adapter": "nope@3"}),
            404,
            "adapter_not_found",
        ),
        (
            "malformed adapter ref",
            json_post("/v1/embeddings", {"input": "x", "adapter": "../etc@x"}),
            422,
            "validation_error",
        ),
        (
            "unknown adapter (classify)",
            json_post("/v1/classify", {"images": [image], "labels": ["a"], "adapter": "nope"}),
            404,
            "adapter_not_found",
        ),
        (
            "unknown adapter (segment)",
            json_post("/v1/segment", {"image": image, "labels": ["a"], "adapter": "nope"}),
            404,
            "adapter_not_found",
        ),
        ("unknown model", json_post("/v1/embeddings", {"input": "x", "model": "gpt-4"}), 404, "model_not_found"),
        (
            "unknown model (classify)",
            json_post("/v1/classify", {"images": [image], "labels": ["a"], "model": "clip"}),
            404,
            "model_not_found",
        ),
        (
            "unknown model (segment)",
            json_post("/v1/segment", {"image": image, "labels": ["a"], "model": "clip"}),
            404,
            "model_not_found",
        ),
        ("unknown adapter (show)", lambda c: c.get("/v1/adapters/nope", headers=ACME), 404, "adapter_not_found"),
        ("bad adapter name (show)", lambda c: c.get("/v1/adapters/..%2F..", headers=ACME), 404, "not_found"),
        ("upload as json", json_post("/v1/adapters", {"file": "x"}), 415, "unsupported_content_type"),
        (
            "upload without file",
            form_post("/v1/adapters", [("other", ("f", b"x"))], {"name": "n"}),
            400,
            "missing_file",
        ),
        ("upload without name", form_post("/v1/adapters", [("file", ("f", b"x"))]), 400, "missing_name"),
        (
            "upload with a bad name",
            form_post("/v1/adapters", [("file", ("f", b"x"))], {"name": "../x"}),
            400,
            "invalid_adapter_name",
        ),
        ("activate without version", json_post("/v1/adapters/nope/activate", {}), 422, "validation_error"),
        (
            "missing key",
            lambda c: c.post("/v1/classify", json={"images": [image], "labels": ["a"]}),
            401,
            "missing_api_key",
        ),
        (
            "body too large",
            raw_post("/v1/embeddings", json.dumps({"input": "x" * 2_100_000}).encode()),
            413,
            "body_too_large",
        ),
    ]


CASES = image_cases() + text_cases() + zeroshot_cases() + reference_cases()


@pytest.mark.parametrize(("call", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_a_json_4xx(gateway: TestClient, call: Call, status: int, code: str) -> None:
    response = call(gateway)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "param"} and error["message"]
    assert error["code"] == code, error
    assert not re.search(r"0x[0-9a-fA-F]{6,}|object at|<[a-zA-Z_]+\.[a-zA-Z_.]+", error["message"]), error  # no repr


@pytest.mark.parametrize(
    ("call", "status", "message", "param"),
    [
        (  # defect 3: used to be "cannot identify image file <_io.BytesIO object at 0x...>"
            json_post("/v1/embed/image", {"images": [b64(GOOD), b64(b"just some text")]}),
            400,
            "images[1]: the bytes are text, not an image",
            "images",
        ),
        (
            json_post("/v1/segment", {"image": b64(BAD_FILES["pdf"]), "labels": ["a"]}),
            400,
            "image: a PDF document is not an image",
            "image",
        ),
        (
            json_post("/v1/embed/image", {"images": [b64(GOOD[:200])]}),
            400,
            "images[0]: the PNG data is truncated",
            "images",
        ),
        (  # defect 6: the pixel limit is a 413 like every size limit
            json_post("/v1/embed/image", {"images": [b64(real_bomb())]}),
            413,
            "images[0]: image is 3000x2000 pixels, above the limit of 4000000",
            "images",
        ),
        (  # defect 4: wrong field names name the expected one
            form_post("/v1/embed/image", [("image", ("f", GOOD))]),
            400,
            "form field 'image' is not accepted: send the image file(s) as 'images'",
            "image",
        ),
        (
            form_post("/v1/segment", [("images", ("f", GOOD))], {"labels": "a"}),
            400,
            "form field 'images' is not accepted: send the image file(s) as 'image'",
            "images",
        ),
        (
            json_post("/v1/embed/image", {"image": b64(GOOD)}),
            422,
            "unknown field 'image'; did you mean 'images'?",
            "image",
        ),
        (
            json_post("/v1/segment", {"images": [b64(GOOD)], "labels": ["a"]}),
            422,
            "unknown field 'images'; did you mean 'image'?",
            "images",
        ),
        (
            json_post("/v1/embeddings", {"inputs": ["a"]}),
            422,
            "unknown field 'inputs'; did you mean 'input'? (accepted: input, model,",
            "inputs",
        ),
        (
            form_post("/v1/classify", [("images", ("f", GOOD))], {"labels": "a", "lables": "b"}),
            422,
            "unknown field 'lables'; did you mean 'labels'?",
            "lables",
        ),
        (  # defect 8: stride is not silently ignored in whole mode
            json_post("/v1/segment", {"image": b64(GOOD), "labels": ["a"], "stride": 50}),
            400,
            "stride applies to mode=slide only",
            "stride",
        ),
        (
            json_post("/v1/classify", {"images": [b64(GOOD)], "labels": ["a"], "temperature": 0}),
            422,
            "temperature: Input should be greater than or equal to 0.0001",
            "temperature",
        ),
        (  # a temperature this small used to pass validation and overflow the float32 softmax into NaN
            json_post("/v1/classify", {"images": [b64(GOOD)], "labels": ["a"], "temperature": 1e-40}),
            422,
            "temperature: Input should be greater than or equal to 0.0001",
            "temperature",
        ),
    ],
)
def test_errors_name_the_field_and_the_reason(
    gateway: TestClient, call: Call, status: int, message: str, param: str
) -> None:
    response = call(gateway)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"].startswith(message), error
    assert error["param"] == param, error


def test_gateway_still_serves_after_the_corpus(gateway: TestClient) -> None:
    for _, call, _, _ in CASES:
        assert call(gateway).status_code < 500
    assert gateway.post("/v1/classify", json={"images": [b64(GOOD)], "labels": ["a", "b"]}, headers=ACME).is_success
