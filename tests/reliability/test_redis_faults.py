"""Redis killed (SIGKILL) under concurrent load and restarted from its append-only file: every request keeps
succeeding (uncached, limits failing open), caching resumes by itself, and no acknowledged adapter is lost; what
Redis acknowledged a second before the kill (cache entries, rate-limit windows) is still there after the restart,
with the persistence mode the chart and the compose file use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from service.tools.local.redis_server import RedisServer
from tests.deploy.tools import ROOT, container, one, render
from tests.integration.gateway_support import (
    ACME,
    adapter_file,
    metric_value,
    tenant_settings,
    unique_name,
)
from tests.reliability.load import Load
from tests.reliability.processes import ControlledTriton, GatewayServer, restart_redis

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TEXTS = [f"a text the cache keeps {i}" for i in range(6)]


@pytest.fixture
def gateway(
    triton_ctl: ControlledTriton, own_redis: RedisServer, tokenizer_path: Path, adapter_store: Path, tmp_path: Path
) -> Iterator[GatewayServer]:
    settings = tenant_settings(triton_ctl.server, own_redis.url, tokenizer_path, adapter_store)
    # Without the in-process LRU in front of Redis, which would keep answering repeated texts while Redis is down
    # (tests/unit/service/gateway/test_cache.py): here every hit is Redis's, so hits stop and resume with it.
    with GatewayServer(settings, tmp_path, TIPS_REDIS__LOCAL_CACHE_BYTES="0") as server:
        yield server


def metric(url: str, name: str, **labels: str) -> float:
    return metric_value(httpx.get(f"{url}/metrics", timeout=10).text, name, **labels)


def upload(url: str, name: str, data: bytes) -> dict:
    response = httpx.post(
        f"{url}/v1/adapters", files={"file": ("a.safetensors", data)}, data={"name": name}, headers=ACME, timeout=30
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def wait_until(condition, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_redis_killed_under_load_serving_continues_uncached_and_caching_resumes(
    gateway: GatewayServer, own_redis: RedisServer
) -> None:
    model_id = httpx.get(f"{gateway.url}/readyz").json()["model_id"]
    name = unique_name("redis-kill")
    acknowledged = upload(gateway.url, name, adapter_file(model_id, seed=3))["versions"][0]

    def send(client: httpx.Client, index: int) -> httpx.Response:
        body = {"input": TEXTS[index % len(TEXTS)], "adapter": name}  # repeated texts: cache hits when Redis is up
        return client.post("/v1/embeddings", json=body, headers=ACME)

    with Load(gateway.url, send, threads=3, pause_s=0.01) as load:
        load.wait_for(30)
        assert metric(gateway.url, "tipsv2_cache_hits_total", tenant="acme") > 0
        own_redis.kill()
        killed = time.monotonic()
        wait_until(lambda: metric(gateway.url, "tipsv2_cache_up") == 0)
        load.wait_for(60)
        ready = httpx.get(f"{gateway.url}/readyz").json()
        assert ready["status"] == "degraded", ready
        hits_while_down = metric(gateway.url, "tipsv2_cache_hits_total", tenant="acme")
        load.wait_for(30)
        assert metric(gateway.url, "tipsv2_cache_hits_total", tenant="acme") == hits_while_down  # no cache, no hits
        restart_redis(own_redis)
        restarted = time.monotonic()
        wait_until(lambda: metric(gateway.url, "tipsv2_cache_hits_total", tenant="acme") > hits_while_down + 10)
        resumed_s = time.monotonic() - restarted
    failures = [o for o in load.outcomes if not o.ok]
    print(f"{len(load.outcomes)} requests, {len(load.between(killed, restarted))} with Redis dead; caching resumed "
          f"{resumed_s * 1000:.0f} ms after the restart")  # fmt: skip
    assert not failures, failures[:5]
    assert metric(gateway.url, "tipsv2_cache_up") == 1
    shown = httpx.get(f"{gateway.url}/v1/adapters/{name}", headers=ACME).json()
    assert shown["versions"] == [acknowledged] and shown["active_version"] == acknowledged["version"]


def persistence_flags(args: list[str]) -> dict[str, str]:
    return {flag: args[args.index(flag) + 1] for flag in ("--appendonly", "--appendfsync") if flag in args}


def test_aof_everysec_keeps_what_redis_acknowledged_a_second_before_a_kill(
    gateway: GatewayServer, own_redis: RedisServer
) -> None:
    config = redis.Redis.from_url(own_redis.url).config_get("append*")
    running = ["--appendonly", config["appendonly"], "--appendfsync", config["appendfsync"]]  # the effective values
    chart = container(one(render("gpu"), "StatefulSet", "-redis"), "redis")["args"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["redis"]["command"]
    assert persistence_flags(running) == {"--appendonly": "yes", "--appendfsync": "everysec"}
    assert persistence_flags([str(a) for a in compose]) == persistence_flags(chart) == persistence_flags(running)

    client = httpx.Client(base_url=gateway.url, headers=ACME, timeout=30)
    for text in TEXTS:
        assert client.post("/v1/embeddings", json={"input": text}).status_code == 200
    keys = redis.Redis.from_url(own_redis.url).keys("tipsv2:*")
    assert any(k.startswith(b"tipsv2:emb:") for k in keys) and any(k.startswith(b"tipsv2:rl:acme") for k in keys)
    time.sleep(1.5)  # appendfsync everysec: at most the last second is at risk
    own_redis.kill()
    restart_redis(own_redis)
    assert set(redis.Redis.from_url(own_redis.url).keys("tipsv2:*")) >= set(keys)
    wait_until(lambda: client.get("/readyz").json()["status"] == "ready")
    hits = metric(gateway.url, "tipsv2_cache_hits_total", tenant="acme")
    for text in TEXTS:
        assert client.post("/v1/embeddings", json={"input": text}).status_code == 200
    assert metric(gateway.url, "tipsv2_cache_hits_total", tenant="acme") == hits + len(TEXTS)
