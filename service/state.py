"""What a running gateway holds: built once in the app's lifespan, reached by routes through `api.deps`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from service.cache import EmbeddingCache
from service.core.config import Settings
from service.core.errors import ErrorKind, GatewayError
from service.core.metrics import Metrics
from service.core.security import KeyRing
from service.embedder import Embedder, ResolvedAdapter
from service.inference.backend import InferenceBackend


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    backend: InferenceBackend
    cache: EmbeddingCache
    embedder: Embedder
    keyring: KeyRing
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
        raise GatewayError(ErrorKind.NOT_FOUND, f"unknown adapter {ref!r}", code="adapter_not_found", param="adapter")

    async def close(self) -> None:
        await self.backend.close()
        await self.cache.close()
