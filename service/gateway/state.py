"""What a running gateway holds: built once in the app's lifespan, reached by routes through `api.deps`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from service.gateway.adapters.manager import AdapterManager
from service.gateway.adapters.notifier import AdapterNotifier
from service.gateway.adapters.registry import AdapterRegistry, ResolvedAdapter
from service.gateway.cache import EmbeddingCache
from service.gateway.core.config import Settings
from service.gateway.core.errors import ErrorKind, GatewayError
from service.gateway.core.metrics import Metrics
from service.gateway.core.security import KeyRing
from service.gateway.embedder import Embedder
from service.gateway.inference.backend import InferenceBackend
from service.gateway.ratelimit import RateLimiter
from service.gateway.recognition import Recognizer


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    backend: InferenceBackend
    redis: aioredis.Redis
    cache: EmbeddingCache
    embedder: Embedder
    recognizer: Recognizer
    keyring: KeyRing
    rate_limiter: RateLimiter
    registry: AdapterRegistry
    notifier: AdapterNotifier
    adapters: AdapterManager
    _inflight: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._inflight = asyncio.Semaphore(self.settings.limits.max_inflight)

    @contextlib.asynccontextmanager
    async def inflight_slot(self) -> AsyncIterator[None]:
        """Admits an inference request or refuses it at once (503 + Retry-After): no unbounded queue."""
        if self._inflight.locked():
            self.metrics.rejected.inc()
            raise GatewayError(
                ErrorKind.OVERLOADED,
                "the gateway is at its in-flight limit; retry shortly",
                code="overloaded",
                retry_after=1,
            )
        async with self._inflight:
            self.metrics.inflight.inc()
            try:
                yield
            finally:
                self.metrics.inflight.dec()

    async def resolve_adapter(self, tenant: str, ref: str | None) -> ResolvedAdapter | None:
        """Resolves `name` or `name@version` among the tenant's adapters; None means the base model."""
        if ref is None:
            return None
        return await self.registry.resolve(tenant, ref)

    async def start(self) -> None:
        self.notifier.start()

    async def close(self) -> None:
        await self.notifier.stop()
        await self.backend.close()
        await self.redis.aclose()
