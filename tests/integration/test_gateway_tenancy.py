"""Tenants are isolated: another tenant's adapter cannot be used, listed, shown, activated or deleted (404, so
names do not leak), and cached vectors never cross tenants or adapter versions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import (
    ACME,
    GLOBEX,
    adapter_file,
    open_gateway,
    served_model_id,
    tenant_settings,
    triton_stats,
    unique_name,
    upload,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path
) -> Iterator[TestClient]:
    with open_gateway(tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store)) as client:
        yield client


def assert_not_found(response, code: str = "adapter_not_found") -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == code


def test_another_tenants_adapter_is_invisible(gateway: TestClient) -> None:
    name = unique_name("private")
    upload(gateway, ACME, name, adapter_file(served_model_id(gateway)))
    assert_not_found(gateway.post("/v1/embeddings", json={"input": "x", "adapter": name}, headers=GLOBEX))
    assert_not_found(gateway.post("/v1/embeddings", json={"input": "x", "adapter": f"{name}@1"}, headers=GLOBEX))
    assert_not_found(gateway.get(f"/v1/adapters/{name}", headers=GLOBEX))
    assert_not_found(gateway.delete(f"/v1/adapters/{name}", headers=GLOBEX))
    assert_not_found(gateway.post(f"/v1/adapters/{name}/activate", json={"version": 1}, headers=GLOBEX))
    assert name not in [a["name"] for a in gateway.get("/v1/adapters", headers=GLOBEX).json()["data"]]
    # ... and the owner still has it, untouched.
    assert gateway.get(f"/v1/adapters/{name}", headers=ACME).json()["active_version"] == 1


def test_same_name_in_two_tenants_are_two_adapters(gateway: TestClient) -> None:
    name, model_id = unique_name("shared-name"), served_model_id(gateway)
    upload(gateway, ACME, name, adapter_file(model_id, seed=1))
    upload(gateway, GLOBEX, name, adapter_file(model_id, seed=2))
    payload = {"input": "same text, same adapter name", "adapter": name}
    a = gateway.post("/v1/embeddings", json=payload, headers=ACME).json()["data"][0]["embedding"]
    b = gateway.post("/v1/embeddings", json=payload, headers=GLOBEX).json()["data"][0]["embedding"]
    assert not np.allclose(a, b, atol=1e-3)


def test_cache_never_crosses_tenants_or_adapter_versions(
    gateway: TestClient, triton: TritonServer, redis_server: RedisServer
) -> None:
    name, model_id = unique_name("cached"), served_model_id(gateway)
    text = f"a text cached per tenant and version {name}"

    def embed(headers: dict[str, str], adapter: str | None = None) -> tuple[list[float], int]:
        before = triton_stats(triton)["tipsv2_text"]
        body = {"input": text, "encoding_format": "float", **({"adapter": adapter} if adapter else {})}
        response = gateway.post("/v1/embeddings", json=body, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()["data"][0]["embedding"], triton_stats(triton)["tipsv2_text"] - before

    acme_base, computed = embed(ACME)
    assert computed == 1
    assert embed(ACME) == (acme_base, 0)  # a hit for the same tenant
    globex_base, computed = embed(GLOBEX)
    assert computed == 1 and np.allclose(globex_base, acme_base, atol=1e-6)  # same vector, not the same entry

    upload(gateway, ACME, name, adapter_file(model_id, seed=1))
    v1, computed = embed(ACME, name)
    assert computed == 1 and not np.allclose(v1, acme_base, atol=1e-3)
    assert embed(ACME, name) == (v1, 0)
    upload(gateway, ACME, name, adapter_file(model_id, seed=2))
    v2, computed = embed(ACME, name)
    assert computed == 1 and not np.allclose(v2, v1, atol=1e-3)
    assert embed(ACME, f"{name}@1") == (v1, 0)

    keys = redis.Redis.from_url(redis_server.url).keys("tipsv2:emb:*")
    owners = {key.decode().split(":")[3] for key in keys}
    assert {"acme", "globex"} <= owners
    adapter_keys = [key.decode() for key in keys if f"/{name}/" in key.decode()]
    assert len(adapter_keys) == 2 and all(":acme:acme/" in key for key in adapter_keys)
