"""Per-tenant rate limits in Redis: a sliding-window counter shared by every gateway replica.

The budget is `limit` requests per `window` seconds. Each tenant has one counter per fixed window; a request is
admitted when `previous * (1 - elapsed / window) + current < limit`, the usual sliding-window estimate (no burst of
2x the limit at a window edge, two integers per tenant instead of a log of timestamps). Check and increment are one
Lua script, so replicas racing on the same tenant cannot overshoot, and a refused request does not consume budget.
A refusal is a 429 with `Retry-After`, the seconds until the estimate drops below the limit.

The embedding endpoints need Redis twice per request, for the quota and for the cache: `check_and_read` does both in
one round trip (the same script, given the cache keys to read once the request is admitted).

When Redis cannot be asked the limiter fails open: the request is admitted, counted in
`tipsv2_rate_limit_unchecked_total`, and the shared breaker keeps the limiter off Redis for its retry interval.
Availability of the product beats exactness of a quota during a Redis outage; in-flight bounds still protect the
gateway and Triton.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.gateway.core.config import RateLimitSettings
from service.gateway.core.errors import ErrorKind, GatewayError
from service.gateway.core.metrics import Metrics
from service.gateway.core.redis import RedisBreaker

# KEYS: current window counter, previous window counter, then any cache keys to read once admitted.
# ARGV: limit, weight of the previous window, ttl (s).
# Returns {admitted (0/1), current count, previous count, the cache values (nil when absent) if admitted}.
SLIDING_WINDOW = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if previous * tonumber(ARGV[2]) + current + 1 > tonumber(ARGV[1]) then
  return {0, current, previous}
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
local reply = {1, current + 1, previous}
if #KEYS > 2 then
  local values = redis.call('MGET', unpack(KEYS, 3))
  for i = 1, #values do
    reply[3 + i] = values[i]
  end
end
return reply
"""


@dataclass(frozen=True)
class Decision:
    admitted: bool
    retry_after_s: int = 0
    checked: bool = True


def retry_after(limit: int, window_s: float, elapsed_s: float, current: int, previous: int) -> int:
    """Whole seconds until one more request fits the sliding-window estimate (at least 1)."""
    if current + 1 > limit:
        # The current window alone is full: wait for the next one, where this window's count becomes the previous
        # one and must decay until `current * (1 - e / window) + 1 <= limit`.
        wait = (window_s - elapsed_s) + window_s * (1 - (limit - 1) / current)
    else:
        # Refused because of the previous window's weight: wait until `previous * (1 - (elapsed + t) / window)`
        # leaves room for one more request.
        wait = window_s * (1 - (limit - 1 - current) / max(previous, 1)) - elapsed_s
    return max(1, math.ceil(wait))


class RateLimiter:
    def __init__(
        self,
        client: aioredis.Redis,
        breaker: RedisBreaker,
        settings: RateLimitSettings,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.breaker = breaker
        self.settings = settings
        self.metrics = metrics
        self.clock = clock  # wall clock: replicas agree on window boundaries (NTP is enough at seconds' scale)
        self._script = client.register_script(SLIDING_WINDOW)

    async def check(self, tenant: str) -> Decision:
        decision, _ = await self.check_and_read(tenant, ())
        return decision

    async def check_and_read(self, tenant: str, keys: Sequence[str]) -> tuple[Decision, list[bytes | None] | None]:
        """The tenant's decision and, when Redis was asked and admitted the request, the values of `keys` (None where
        absent) read in the same round trip. The values are None when Redis was not asked: an unlimited tenant, or
        Redis unavailable (admitted unchecked)."""
        limit = self.settings.limit_for(tenant)
        if limit <= 0:
            return Decision(True), None
        if not self.breaker.available():
            self.metrics.rate_limit_unchecked.inc()
            return Decision(True, checked=False), None
        window = self.settings.window_s
        now = self.clock()
        index, elapsed = divmod(now, window)
        counters = [f"tipsv2:rl:{tenant}:{int(index)}", f"tipsv2:rl:{tenant}:{int(index) - 1}"]
        try:
            reply = await self._script(keys=[*counters, *keys], args=[limit, 1 - elapsed / window, 2 * window])
        except (RedisError, OSError) as exc:
            self.breaker.failed("ratelimit", exc)
            self.metrics.rate_limit_unchecked.inc()
            return Decision(True, checked=False), None
        self.breaker.succeeded()
        admitted, current, previous = reply[:3]
        if admitted:
            # Lua drops trailing nils from a table: absent values past the last present one are missing from reply.
            values = list(reply[3:]) + [None] * (len(keys) - len(reply) + 3)
            return Decision(True), [v.encode() if isinstance(v, str) else v for v in values]
        self.metrics.rate_limited.labels(tenant).inc()
        return Decision(False, retry_after(limit, window, elapsed, int(current), int(previous))), None

    def refusal(self, tenant: str, decision: Decision) -> GatewayError:
        return GatewayError(
            ErrorKind.RATE_LIMITED,
            f"rate limit of {self.settings.limit_for(tenant)} requests per {self.settings.window_s} s exceeded",
            code="rate_limited",
            retry_after=decision.retry_after_s,
        )

    def quota(self, tenant: str) -> TenantQuota:
        """The tenant's check, to ride along with a cache read (`EmbeddingCache.get_many`)."""
        return TenantQuota(self, tenant)

    async def enforce(self, tenant: str) -> None:
        decision = await self.check(tenant)
        if not decision.admitted:
            raise self.refusal(tenant, decision)


@dataclass(frozen=True)
class TenantQuota:
    limiter: RateLimiter
    tenant: str

    async def check_and_read(self, keys: Sequence[str]) -> list[bytes | None] | None:
        decision, values = await self.limiter.check_and_read(self.tenant, keys)
        if not decision.admitted:
            raise self.limiter.refusal(self.tenant, decision)
        return values
