"""Rate-limit arithmetic, and failing open when Redis cannot be asked (the Lua script itself runs against the real
Redis in tests/integration/test_gateway_ratelimit.py)."""

from __future__ import annotations

import pytest

from service.gateway.core.config import RateLimitSettings, RedisSettings
from service.gateway.core.metrics import Metrics
from service.gateway.core.redis import RedisBreaker, make_client
from service.gateway.ratelimit import RateLimiter, retry_after
from service.tools.local.redis_server import free_port


@pytest.mark.parametrize(
    ("limit", "elapsed", "current", "previous", "expected"),
    [
        (3, 0.0, 3, 0, 14),  # full window: wait for the next one and for this one to decay to 2/3 of its weight
        (3, 9.5, 3, 0, 4),  # 0.5 s to the next window + 3.3 s of decay
        (10, 2.0, 5, 10, 4),  # 10 * (1 - (2 + t) / 10) + 5 + 1 <= 10  ->  t >= 4
        (10, 5.9, 5, 10, 1),  # never less than one second
    ],
)
def test_retry_after_is_when_the_estimate_admits_one_more(
    limit: int, elapsed: float, current: int, previous: int, expected: int
) -> None:
    assert retry_after(limit, 10.0, elapsed, current, previous) == expected


def limiter(requests: int) -> tuple[RateLimiter, Metrics]:
    metrics = Metrics()
    client = make_client(RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0", socket_timeout_s=0.05))
    return RateLimiter(client, RedisBreaker(1.0, metrics), RateLimitSettings(requests=requests), metrics), metrics


async def test_without_redis_requests_are_admitted_and_counted() -> None:
    rate, metrics = limiter(requests=1)
    decisions = [await rate.check("acme") for _ in range(3)]
    assert all(d.admitted and not d.checked for d in decisions)
    assert metrics.registry.get_sample_value("tipsv2_rate_limit_unchecked_total") == 3
    assert metrics.registry.get_sample_value("tipsv2_cache_up") == 0


async def test_a_zero_limit_means_unlimited_and_asks_nobody() -> None:
    rate, metrics = limiter(requests=0)
    assert (await rate.check("acme")).checked
    assert metrics.registry.get_sample_value("tipsv2_rate_limit_unchecked_total") == 0


def test_per_tenant_overrides() -> None:
    settings = RateLimitSettings(requests=10, tenants={"acme": 2})
    assert settings.limit_for("acme") == 2 and settings.limit_for("globex") == 10
