"""The adapter store failing under an upload: a missing volume and a full disk answer 503 (retry later) with the
one error body; nothing half-written is ever listed or served, no temporary or orphaned file stays behind, and the
versions acknowledged before keep being served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import (
    ACME,
    adapter_file,
    open_gateway,
    served_model_id,
    tenant_settings,
    unique_name,
    upload,
)
from tests.reliability.adapters import assert_store_is_whole, served_version
from tests.reliability.processes import ControlledTriton, GatewayServer

pytestmark = [pytest.mark.integration]


def assert_storage_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "adapter_store_unavailable" and response.headers["Retry-After"]


def test_a_missing_store_volume_is_503_not_an_empty_store(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, tmp_path: Path
) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    with open_gateway(tenant_settings(triton, redis_server.url, tokenizer_path, volume)) as gateway:
        name = unique_name("mounted")
        upload(gateway, ACME, name, adapter_file(served_model_id(gateway)))
        volume.rename(tmp_path / "unmounted")  # the volume is gone (unmounted, lost claim), its path with it
        try:
            data = adapter_file(served_model_id(gateway), seed=2)
            files = {"file": ("a.safetensors", data)}
            assert_storage_unavailable(gateway.post("/v1/adapters", files=files, data={"name": name}, headers=ACME))
            assert_storage_unavailable(gateway.get("/v1/adapters", headers=ACME))
            assert_storage_unavailable(gateway.get(f"/v1/adapters/{name}", headers=ACME))
            used = gateway.post("/v1/embeddings", json={"input": "x", "adapter": f"{name}@1"}, headers=ACME)
            assert_storage_unavailable(used)  # not "unknown adapter": the client must retry, not re-upload
            assert not volume.exists(), "the gateway recreated the store on the local disk"
        finally:
            (tmp_path / "unmounted").rename(volume)
        shown = gateway.get(f"/v1/adapters/{name}", headers=ACME)
        assert shown.status_code == 200 and [v["version"] for v in shown.json()["versions"]] == [1]


@pytest.fixture
def full_disk_gateway(
    triton_ctl: ControlledTriton, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path, tmp_path: Path
) -> Iterator[GatewayServer]:
    """A gateway process whose writes beyond 8 KiB per file fail (EFBIG), as on a full disk; it logs to /dev/null."""
    settings = tenant_settings(triton_ctl.server, redis_server.url, tokenizer_path, adapter_store)
    with GatewayServer(settings, tmp_path, file_size_limit=8 << 10, keep_log=False) as server:
        yield server


def test_a_full_disk_fails_the_upload_and_nothing_half_written_is_listed_or_served(
    full_disk_gateway: GatewayServer, adapter_store: Path
) -> None:
    client = httpx.Client(base_url=full_disk_gateway.url, headers=ACME, timeout=30)
    name = unique_name("full-disk")
    model_id = client.get("/readyz").json()["model_id"]

    def post(data: bytes) -> httpx.Response:
        return client.post("/v1/adapters", files={"file": ("a.safetensors", data)}, data={"name": name})

    # An adapter file larger than what the disk takes: refused, and the name does not exist.
    assert_storage_unavailable(post(adapter_file(model_id, seed=1, rank=64)))
    assert client.get(f"/v1/adapters/{name}").status_code == 404
    # Small adapters fit until the manifest, which grows with each version, no longer does: the adapter file of
    # that upload was written, its manifest was not.
    accepted = 0
    for seed in range(100, 140):
        response = post(adapter_file(model_id, seed=seed, rank=1))
        if response.status_code != 201:
            assert_storage_unavailable(response)
            break
        accepted += 1
    assert 2 <= accepted < 40, accepted
    shown = client.get(f"/v1/adapters/{name}").json()
    assert [v["version"] for v in shown["versions"]] == list(range(1, accepted + 1))
    assert shown["active_version"] == accepted
    assert served_version(full_disk_gateway.url, name) == accepted  # the last acknowledged version, not the failed one
    missing = client.post("/v1/embeddings", json={"input": "x", "adapter": f"{name}@{accepted + 1}"})
    assert missing.status_code == 404
    assert_store_is_whole(adapter_store, "acme", name, model_id)  # no temporary and no orphaned file
