"""Per-tenant rate limits in the real Redis: the sliding window admits and refuses as specified, Retry-After says
when a request fits again, replicas share one budget, and other tenants are unaffected."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.gateway.core.config import RateLimitSettings, RedisSettings
from service.gateway.core.metrics import Metrics
from service.gateway.core.redis import RedisBreaker, make_client
from service.gateway.ratelimit import RateLimiter
from service.tools.local.redis_server import RedisServer, free_port
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import ACME, GLOBEX, metric_value, open_gateway, tenant_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test alone: counters of other tests cannot interfere."""
    with RedisServer(free_port(), tmp_path / "redis") as server:
        yield server


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(redis_url: str, clock: Clock, requests: int = 3, window_s: int = 10) -> RateLimiter:
    metrics = Metrics()
    client = make_client(RedisSettings(url=redis_url))
    return RateLimiter(
        client, RedisBreaker(0.2, metrics), RateLimitSettings(requests=requests, window_s=window_s), metrics, clock
    )


async def admitted(rate: RateLimiter, tenant: str = "acme") -> bool:
    return (await rate.check(tenant)).admitted


async def test_sliding_window_admits_the_limit_then_refuses_until_retry_after(own_redis: RedisServer) -> None:
    clock = Clock(1000.0)  # the start of a 10 s window
    rate = limiter(own_redis.url, clock)
    assert [await admitted(rate) for _ in range(3)] == [True, True, True]
    refused = await rate.check("acme")
    assert not refused.admitted
    # The full window must become the previous one and decay to 2/3: 10 s + 10 s * (1 - 2/3) = 13.3 s -> 14 s.
    assert refused.retry_after_s == 14
    clock.now += 13.0
    assert not await admitted(rate)
    clock.now = 1000.0 + 14
    assert await admitted(rate)
    assert not await admitted(rate)  # 3 * 0.6 + 1 (+ 1) > 3


async def test_refused_requests_do_not_consume_the_budget(own_redis: RedisServer) -> None:
    clock = Clock(2000.0)
    rate = limiter(own_redis.url, clock, requests=2)
    assert [await admitted(rate) for _ in range(2)] == [True, True]
    assert [await admitted(rate) for _ in range(50)] == [False] * 50
    clock.now = 2000.0 + 10 + 10  # two windows later the budget is whole again, however much was refused
    assert [await admitted(rate) for _ in range(3)] == [True, True, False]


async def test_replicas_share_one_budget_and_tenants_have_their_own(own_redis: RedisServer) -> None:
    clock = Clock(3000.0)
    first, second = limiter(own_redis.url, clock), limiter(own_redis.url, clock)
    assert [await admitted(first), await admitted(second), await admitted(first)] == [True, True, True]
    assert not await admitted(second)
    assert await admitted(second, "globex")


def test_gateway_answers_429_with_retry_after_per_tenant(
    triton: TritonServer, own_redis: RedisServer, tokenizer_path: Path, adapter_store: Path
) -> None:
    limits = {"requests": 100_000, "window_s": 60, "tenants": {"globex": 2}}
    settings = tenant_settings(triton, own_redis.url, tokenizer_path, adapter_store, rate_limit=limits)
    with open_gateway(settings) as gateway:
        statuses = [gateway.post("/v1/embeddings", json={"input": "x"}, headers=GLOBEX).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = gateway.get("/v1/adapters", headers=GLOBEX)
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 120
        assert gateway.post("/v1/embeddings", json={"input": "x"}, headers=ACME).status_code == 200
        text = gateway.get("/metrics").text
        assert metric_value(text, "tipsv2_rate_limited_total", tenant="globex") == 2
        assert metric_value(text, "tipsv2_rate_limited_total", tenant="acme") == 0


async def test_the_check_reads_the_cache_in_its_own_round_trip_once_admitted(own_redis: RedisServer) -> None:
    clock = Clock(4000.0)
    rate = limiter(own_redis.url, clock, requests=1)
    client = make_client(RedisSettings(url=own_redis.url))
    await client.set("tipsv2:emb:k1", b"\x00\x01")
    decision, values = await rate.check_and_read("acme", ["tipsv2:emb:k1", "tipsv2:emb:absent"])
    assert decision.admitted and values == [b"\x00\x01", None]
    decision, values = await rate.check_and_read("acme", ["tipsv2:emb:k1"])
    assert not decision.admitted and values is None  # refused: nothing read
    await client.aclose()
