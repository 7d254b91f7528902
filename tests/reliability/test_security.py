"""Security promises, each checked against what the running gateway does: API keys exist only as digests and are
compared in constant time against every stored digest; no key and no adapter content reaches the logs (at DEBUG,
across uploads, refused uploads and failed authentication); metrics carry neither adapter names nor request content,
and only configured tenants as labels; body and upload limits hold for chunked bodies that announce no length."""

from __future__ import annotations

import gc
import hmac
import json
import re
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.gateway.core import security
from service.gateway.core.config import hash_key
from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import (
    ACME,
    GLOBEX,
    KEYS,
    open_gateway,
    tenant_settings,
    unique_name,
)
from tests.reliability.processes import GatewayServer
from training.contracts.adapter_file import adapter_bytes, build_metadata

pytestmark = [pytest.mark.integration]

WRONG_KEYS = ("wrong-key-7f3a9c21e5", "Zm9yZ2VkLWtleS0xMjM0NTY3OA")
MARKER = "adapter-content-marker-5d1e"  # in the adapter files' metadata: it must never be logged
SECRET_NAME = "zz-adapter-name-9b4f"  # an adapter name: must not become a metric label
PROBE = "probe-path-3c7e"  # in request paths: logged by the access log (a URL is not content), never a label
MAX_BODY, MAX_ADAPTER = 1_000_000, 200_000


# --- keys: digests only, constant-time comparison against all of them ---


@pytest.mark.parametrize("presented", ["key-0", "key-4", "not-a-key"])
def test_a_key_is_compared_against_every_stored_digest_with_compare_digest(
    presented: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [f"key-{i}" for i in range(5)]
    ring = security.KeyRing({hash_key(k): f"tenant-{i}" for i, k in enumerate(keys)})
    compared: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", counting)
    try:
        ring.tenant_for(presented)
    except security.GatewayError as exc:
        assert exc.code == "invalid_api_key"
    # Same work whether the key matches the first digest, the last or none: no early exit to time.
    assert len(compared) == len(keys)
    assert {a for a, _ in compared} == {bytes.fromhex(hash_key(presented))}
    assert {b for _, b in compared} == {bytes.fromhex(hash_key(k)) for k in keys}


def reachable_text(root: object, limit: int = 400_000) -> Iterator[str | bytes]:
    """Every str/bytes reachable from `root` through objects' references, not through modules, classes or code
    (they lead to the whole interpreter, this test's own constants included)."""
    skip = (type, types.ModuleType, types.FunctionType, types.CodeType, types.FrameType, types.BuiltinFunctionType)
    seen: set[int] = set()
    stack = [root]
    while stack and len(seen) < limit:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        if isinstance(obj, str | bytes | bytearray):
            yield bytes(obj) if isinstance(obj, bytearray) else obj
            continue
        stack.extend(gc.get_referents(obj))


def test_no_plaintext_key_is_held_by_the_settings_or_the_running_state(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path
) -> None:
    settings = tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store)
    with open_gateway(settings) as client:
        for headers in (ACME, GLOBEX, {"X-API-Key": KEYS["acme"]}, {"Authorization": f"Bearer {WRONG_KEYS[0]}"}):
            client.post("/v1/embeddings", json={"input": "whose key?"}, headers=headers)
        state = client.app.state.tipsv2  # type: ignore[attr-defined]
        plaintexts = [*KEYS.values(), *WRONG_KEYS]
        leaked = [
            text
            for text in reachable_text(state)
            for key in plaintexts
            if (key in text if isinstance(text, str) else key.encode() in text)
        ]
    assert not leaked, leaked[:3]
    assert set(settings.api_keys) == {hash_key(k) for k in KEYS.values()}
    assert not any(key in settings.model_dump_json() for key in plaintexts)


# --- logs, metrics and limits of one gateway process at DEBUG ---


@pytest.fixture(scope="module")
def debug_gateway(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path, tmp_path_factory
) -> Iterator[GatewayServer]:
    settings = tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store)
    env = {
        "TIPS_LOG_LEVEL": "DEBUG",
        "TIPS_LIMITS__MAX_BODY_BYTES": str(MAX_BODY),
        "TIPS_ADAPTERS__MAX_BYTES": str(MAX_ADAPTER),
    }
    workdir = tmp_path_factory.mktemp("debug-gateway")
    with GatewayServer(settings, workdir, uvicorn_args=("--log-level", "debug"), **env) as server:
        yield server


def marked_adapter(model_id: str, **meta: str) -> bytes:
    """A valid adapter whose metadata and tensor bytes are recognisable in a log."""
    rng = np.random.default_rng(7)
    tensors = {
        f"{m}.{p}": (rng.standard_normal(shape) * 0.05).astype(np.float32)
        for m in ("image", "text")
        for p, shape in (("down", (4, 64)), ("up", (64, 4)))
    }
    metadata = build_metadata("tipsv2-tiny", model_id, ("image", "text"), 4, 64, "relu", MARKER, description=MARKER)
    metadata.update(meta)
    return adapter_bytes(tensors, metadata)


def traffic(url: str) -> list[bytes]:
    """Uploads (accepted and refused), adapter use, failed authentication, unknown paths; returns the files sent."""
    client = httpx.Client(base_url=url, timeout=30)
    model_id = client.get("/readyz").json()["model_id"]
    good, files = marked_adapter(model_id), []
    refused = [
        marked_adapter(model_id, activation=MARKER),  # echoed to the client in the 400, never logged
        marked_adapter(model_id, **{f"k{i}": MARKER for i in range(40)}),  # metadata bomb
        marked_adapter("0" * 16),  # another base model
        good + MARKER.encode(),  # polyglot tail
    ]
    for data in [good, *refused]:
        response = client.post(
            "/v1/adapters", files={"file": ("a.safetensors", data)}, data={"name": SECRET_NAME}, headers=ACME
        )
        assert response.status_code == (201 if data is good else 400), response.text
        files.append(data)
    used = client.post("/v1/embeddings", json={"input": f"text {MARKER}", "adapter": SECRET_NAME}, headers=ACME)
    assert used.status_code == 200, used.text
    for wrong in WRONG_KEYS:
        assert client.post("/v1/embeddings", json={"input": "x"}, headers={"X-API-Key": wrong}).status_code == 401
        assert client.get("/v1/adapters", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
    client.get(f"/v1/adapters/{SECRET_NAME}-{PROBE}", headers=GLOBEX)  # another tenant probing a name: 404
    client.get(f"/{SECRET_NAME}/{PROBE}")  # no such route
    return files


@pytest.fixture(scope="module")
def sent_files(debug_gateway: GatewayServer) -> list[bytes]:
    return traffic(debug_gateway.url)


def test_no_key_and_no_adapter_content_in_the_logs(debug_gateway: GatewayServer, sent_files: list[bytes]) -> None:
    log = debug_gateway.log_text()
    assert " DEBUG " in log and "POST /v1/adapters" in log, "the log was not captured at DEBUG"
    for key in (*KEYS.values(), *WRONG_KEYS, hash_key(KEYS["acme"])):
        assert key not in log, "an API key (or its digest) reached the log"
    assert MARKER not in log, "adapter or request content reached the log"
    raw = debug_gateway.log.read_bytes()
    for data in sent_files:
        tensors = data[-256:]  # tensor bytes at the end of the file
        assert tensors not in raw


def test_metrics_carry_no_adapter_name_no_request_content_and_only_configured_tenants(
    debug_gateway: GatewayServer, sent_files: list[bytes]
) -> None:
    text = httpx.get(f"{debug_gateway.url}/metrics").text
    assert SECRET_NAME not in text and MARKER not in text and PROBE not in text
    tenants = set(re.findall(r'tenant="([^"]*)"', text))
    assert tenants and tenants <= set(KEYS), tenants
    routes = set(re.findall(r'endpoint="([^"]*)"', text))
    assert "/v1/adapters/{name}" in routes and "unmatched" in routes
    assert all(r == "unmatched" or r.startswith(("/v1/", "/healthz", "/readyz", "/metrics")) for r in routes), routes


def test_chunked_bodies_without_a_length_are_held_to_the_body_and_upload_limits(debug_gateway: GatewayServer) -> None:
    def chunks(total: int, prefix: bytes = b"", suffix: bytes = b"") -> Iterator[bytes]:
        yield prefix
        for _ in range(total // 65536):
            yield b"x" * 65536
        yield suffix

    client = httpx.Client(base_url=debug_gateway.url, headers=ACME, timeout=30)
    body = chunks(MAX_BODY * 2, b'{"input": "', b'"}')
    response = client.post("/v1/embeddings", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
    adapter = chunks(MAX_ADAPTER + 100_000)  # under the body limit, over the adapter limit
    response = client.post(
        f"/v1/adapters?name={unique_name()}", content=adapter, headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "adapter_too_large"
    assert json.loads(client.get("/v1/adapters").text)["data"] is not None  # still serving
