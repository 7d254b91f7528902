"""The gateway's one Redis connection pool and the circuit breaker every Redis user shares.

Redis holds the cache, the rate-limit counters and the hot-swap notices; none of them may make a request fail or
wait. Once an operation fails, the breaker keeps every user away from Redis for `retry_interval_s` (a dead Redis
then costs nothing; a slow one at most one socket timeout per interval), after which the next operation probes it.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from service.gateway.core.config import RedisSettings
from service.gateway.core.metrics import Metrics

log = logging.getLogger(__name__)


def make_client(settings: RedisSettings) -> aioredis.Redis:
    # One immediate retry on a connection error: after a Redis restart, pooled connections are dead and the first use
    # of each fails; a reconnect then succeeds at once. A Redis that is really down refuses the retry just as fast.
    # Timeouts are not retried: a slow Redis must cost at most one socket timeout.
    return aioredis.Redis.from_url(
        settings.url,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.socket_timeout_s,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
        retry_on_timeout=False,
        health_check_interval=0,
    )


class RedisBreaker:
    """Shared health of the Redis link: `available()` before asking, `failed()`/`succeeded()` after."""

    def __init__(self, retry_interval_s: float, metrics: Metrics) -> None:
        self.retry_interval_s = retry_interval_s
        self.metrics = metrics
        self.up = True
        self._skip_until = 0.0

    def available(self) -> bool:
        return time.monotonic() >= self._skip_until

    def failed(self, operation: str, exc: BaseException) -> None:
        if self.up:
            log.warning("redis %s failed (%s); serving without Redis until it answers", operation, type(exc).__name__)
        self.up = False
        self._skip_until = time.monotonic() + self.retry_interval_s
        self.metrics.cache_errors.labels(operation).inc()
        self.metrics.cache_up.set(0)

    def succeeded(self) -> None:
        if not self.up:
            log.info("redis is back; cache and rate limits resumed")
        self.up = True
        self._skip_until = 0.0
        self.metrics.cache_up.set(1)
