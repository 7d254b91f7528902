"""The Redis embedding cache.

Keys: `tipsv2:emb:{model_id}:{tenant}:{adapter}:{modality}:{options}:{sha256(content)}`, so entries never cross
model versions, tenants (not even for the base model: a shared entry would tell one tenant, by its latency, what
another embedded), adapter versions, modalities or output options. Values are raw little-endian float32 bytes.

Redis is an optimisation, never a dependency: every failure or timeout counts as a miss, is counted in metrics, and
opens a short circuit-breaker window during which Redis is not asked at all, so a dead or slow Redis costs requests
nothing but the cache.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.core.config import RedisSettings
from service.core.metrics import Metrics

log = logging.getLogger(__name__)


def content_hash(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def cache_key(model_id: str, tenant: str, adapter: str, modality: str, options: str, digest: str) -> str:
    return f"tipsv2:emb:{model_id}:{tenant}:{adapter or '-'}:{modality}:{options}:{digest}"


class EmbeddingCache:
    def __init__(self, settings: RedisSettings, metrics: Metrics, client: aioredis.Redis | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.client = client or aioredis.Redis.from_url(
            settings.url,
            socket_timeout=settings.socket_timeout_s,
            socket_connect_timeout=settings.socket_timeout_s,
            retry_on_timeout=False,
            health_check_interval=0,
        )
        self._skip_until = 0.0
        self.up = True

    def _available(self) -> bool:
        return time.monotonic() >= self._skip_until

    def _failed(self, operation: str, exc: Exception) -> None:
        if self.up:
            log.warning("redis %s failed (%s); serving without the cache", operation, type(exc).__name__)
        self.up = False
        self._skip_until = time.monotonic() + self.settings.retry_interval_s
        self.metrics.cache_errors.labels(operation).inc()
        self.metrics.cache_up.set(0)

    def _succeeded(self) -> None:
        if not self.up:
            log.info("redis is back; caching resumed")
        self.up = True
        self.metrics.cache_up.set(1)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys or not self._available():
            return [None] * len(keys)
        try:
            values = await self.client.mget(list(keys))
        except (RedisError, OSError) as exc:
            self._failed("get", exc)
            return [None] * len(keys)
        self._succeeded()
        return [v.encode() if isinstance(v, str) else v for v in values]

    async def set_many(self, items: dict[str, bytes]) -> None:
        if not items or not self._available():
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, value, ex=self.settings.cache_ttl_s)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("set", exc)
            return
        self._succeeded()

    async def ping(self) -> bool:
        try:
            ok = bool(await self.client.ping())
        except (RedisError, OSError) as exc:
            self._failed("ping", exc)
            return False
        self._succeeded()
        self._skip_until = 0.0
        return ok

    async def close(self) -> None:
        await self.client.aclose()


def encode_vector(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def decode_vector(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<f4")
