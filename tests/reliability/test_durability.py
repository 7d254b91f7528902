"""Nothing acknowledged is lost: adapter uploads answered 201 survive the gateway and Redis being killed (SIGKILL,
no shutdown code runs) and are served by a new gateway process; concurrent uploads of one name from threads of two
gateway processes get distinct versions, and every stored file is whole (it validates and its digest is its name)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
from pathlib import Path

import httpx
import pytest

from service.tools.local.redis_server import RedisServer
from tests.integration.gateway_support import ACME, adapter_file, tenant_settings, unique_name
from tests.reliability.adapters import assert_store_is_whole, post_upload, served_version, without_active
from tests.reliability.processes import ControlledTriton, GatewayServer, restart_redis

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_acknowledged_uploads_survive_killing_the_gateway_and_redis(
    triton_ctl: ControlledTriton, own_redis: RedisServer, tokenizer_path: Path, adapter_store: Path, tmp_path: Path
) -> None:
    settings = tenant_settings(triton_ctl.server, own_redis.url, tokenizer_path, adapter_store)
    first = GatewayServer(settings, tmp_path).start()
    try:
        model_id = httpx.get(f"{first.url}/readyz").json()["model_id"]
        name, files = unique_name("durable"), [adapter_file(model_id, seed=40 + i) for i in range(3)]
        acknowledged = []
        for data in files:
            response = post_upload(first.url, name, data)
            assert response.status_code == 201, response.text
            acknowledged.append(without_active(response.json()["versions"][-1]))
        # The instant the last 201 arrived: kill both, so that nothing after the answer can have saved the upload.
        first.kill()
        own_redis.kill()
    finally:
        first.kill()
    restart_redis(own_redis)
    with GatewayServer(settings, tmp_path) as second:
        shown = httpx.get(f"{second.url}/v1/adapters/{name}", headers=ACME).json()
        assert [without_active(v) for v in shown["versions"]] == acknowledged and shown["active_version"] == 3
        assert served_version(second.url, name) == 3 and served_version(second.url, f"{name}@1") == 1
    assert [v["sha256"] for v in acknowledged] == [hashlib.sha256(d).hexdigest() for d in files]
    assert_store_is_whole(adapter_store, "acme", name, model_id)


def test_concurrent_uploads_of_one_name_from_two_gateway_processes_get_distinct_versions(
    triton_ctl: ControlledTriton, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path, tmp_path: Path
) -> None:
    settings = tenant_settings(triton_ctl.server, redis_server.url, tokenizer_path, adapter_store)
    with GatewayServer(settings, tmp_path) as one, GatewayServer(settings, tmp_path) as other:
        model_id = httpx.get(f"{one.url}/readyz").json()["model_id"]
        name = unique_name("race")
        # Large enough (rank 64: 64 KiB of tensors) that writes take a while and would interleave if not serialised.
        files = [adapter_file(model_id, seed=60 + i, rank=64) for i in range(12)]
        urls = [one.url, other.url] * 6
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            responses = list(pool.map(lambda args: post_upload(*args), zip(urls, [name] * 12, files, strict=True)))
        assert [r.status_code for r in responses] == [201] * 12, [r.text for r in responses if r.status_code != 201]
        versions = sorted(r.json()["uploaded_version"] for r in responses)
        assert versions == list(range(1, 13))
        by_version = {r.json()["uploaded_version"]: files[i] for i, r in enumerate(responses)}
        shown = httpx.get(f"{other.url}/v1/adapters/{name}", headers=ACME).json()
        for version in shown["versions"]:  # each version holds the bytes of the upload that was told that number
            assert version["sha256"] == hashlib.sha256(by_version[version["version"]]).hexdigest()
        assert served_version(one.url, f"{name}@7") == 7
    assert_store_is_whole(adapter_store, "acme", name, model_id)
    manifest = json.loads((adapter_store / "acme" / name / "manifest.json").read_text())
    assert manifest["next_version"] == 13
