"""Redis stopped mid-test: every request still succeeds (uncached, rate limits failing open, hot swap through the
registry's TTL), /readyz and the metrics say so; Redis back: caching and notices resume without a restart."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.tools.local.redis_server import RedisServer, free_port
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import (
    ACME,
    adapter_file,
    metric_value,
    open_gateway,
    png_bytes,
    served_model_id,
    tenant_settings,
    unique_name,
    upload,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """This test's Redis, stopped and restarted by the test (the session's Redis is never touched)."""
    server = RedisServer(free_port(), tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def gateways(
    triton: TritonServer, own_redis: RedisServer, tokenizer_path: Path, adapter_store: Path
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two replicas on the same Redis and store; the second trusts cached manifests for 0.5 s (the default)."""
    settings = tenant_settings(triton, own_redis.url, tokenizer_path, adapter_store)
    with open_gateway(settings) as first, open_gateway(settings) as second:
        yield first, second


def cache_hits(client: TestClient) -> float:
    return metric_value(client.get("/metrics").text, "tipsv2_cache_hits_total", tenant="acme")


def embed(client: TestClient, text: str, adapter: str | None = None) -> dict:
    response = client.post("/v1/embeddings", json={"input": text, "adapter": adapter}, headers=ACME)
    assert response.status_code == 200, response.text
    return dict(response.json())


def served_version(client: TestClient, name: str) -> int:
    return int(embed(client, f"which version {time.monotonic()}", name)["adapter"]["version"])


def wait_until(condition, timeout: float = 10.0) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "condition not met in time"
        time.sleep(0.05)
    return time.monotonic() - started


def test_requests_succeed_while_redis_is_down_and_caching_resumes(
    gateways: tuple[TestClient, TestClient], own_redis: RedisServer
) -> None:
    first, second = gateways
    name, model_id = unique_name("outage"), served_model_id(first)
    upload(first, ACME, name, adapter_file(model_id, seed=1))
    embed(first, "cached before the outage")
    hits = cache_hits(first)
    embed(first, "cached before the outage")
    assert cache_hits(first) == hits + 1
    assert served_version(second, name) == 1

    own_redis.stop()
    unchecked = metric_value(first.get("/metrics").text, "tipsv2_rate_limit_unchecked_total")
    image = base64.b64encode(png_bytes(5)).decode()
    for path, body in [
        ("/v1/embeddings", {"input": "during the outage"}),
        ("/v1/embed/image", {"images": [image]}),
        ("/v1/classify", {"images": [image], "labels": ["a", "b"]}),
        ("/v1/segment", {"image": image, "labels": ["a", "b"], "mode": "slide"}),
    ]:
        response = first.post(path, json=body, headers=ACME)
        assert response.status_code == 200, (path, response.text)
    readiness = first.get("/readyz")
    assert readiness.status_code == 200 and readiness.json()["status"] == "degraded"
    assert any("redis" in line for line in readiness.json()["detail"])
    metrics = first.get("/metrics").text
    assert metric_value(metrics, "tipsv2_cache_up") == 0
    assert metric_value(metrics, "tipsv2_rate_limit_unchecked_total") > unchecked

    # A swap made while Redis is down reaches the other replica through its 0.5 s manifest revalidation.
    assert served_version(second, name) == 1  # a freshly revalidated entry: the worst case for the TTL
    upload(first, ACME, name, adapter_file(model_id, seed=2))
    swap_s = wait_until(lambda: served_version(second, name) == 2)
    print(f"swap seen by the other replica with Redis down after {swap_s * 1000:.0f} ms")
    assert swap_s <= 1.0
    assert embed(first, "cached before the outage")["data"]  # uncached, but served

    restarted = RedisServer(own_redis.port, own_redis.workdir).start()
    own_redis.process = restarted.process  # the fixture stops whichever process is current
    wait_until(lambda: first.get("/readyz").json()["status"] == "ready")
    embed(first, "cached after the outage")
    hits = cache_hits(first)
    embed(first, "cached after the outage")
    assert cache_hits(first) == hits + 1
    # Notices flow again: the second replica resubscribed and sees the next swap through Redis.
    notifier = second.app.state.tipsv2.notifier  # type: ignore[attr-defined]
    wait_until(notifier.subscribed.is_set)
    received = metric_value(second.get("/metrics").text, "tipsv2_adapter_notices_total", event="received")
    first.post(f"/v1/adapters/{name}/activate", json={"version": 1}, headers=ACME)
    wait_until(
        lambda: metric_value(second.get("/metrics").text, "tipsv2_adapter_notices_total", event="received") > received
    )
    assert served_version(second, name) == 1
