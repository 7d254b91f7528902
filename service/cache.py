"""The Redis embedding cache.

Keys: `tipsv2:emb:{model_id}:{tenant}:{adapter}:{modality}:{options}:{sha256(content)}`, so entries never cross
model versions, tenants (not even for the base model: a shared entry would tell one tenant, by its latency, what
another embedded), adapter versions, modalities or output options. Values are raw little-endian float32 bytes.

Redis is an optimisation, never a dependency: every failure or timeout counts as a miss, is counted in metrics, and
opens the shared circuit breaker (`service.core.redis`) during which Redis is not asked at all, so a dead or slow
Redis costs requests nothing but the cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.core.redis import RedisBreaker


def content_hash(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def cache_key(model_id: str, tenant: str, adapter: str, modality: str, options: str, digest: str) -> str:
    return f"tipsv2:emb:{model_id}:{tenant}:{adapter or '-'}:{modality}:{options}:{digest}"


class EmbeddingCache:
    def __init__(self, client: aioredis.Redis, breaker: RedisBreaker, ttl_s: int) -> None:
        self.client = client
        self.breaker = breaker
        self.ttl_s = ttl_s

    @property
    def up(self) -> bool:
        return self.breaker.up

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys or not self.breaker.available():
            return [None] * len(keys)
        try:
            values = await self.client.mget(list(keys))
        except (RedisError, OSError) as exc:
            self.breaker.failed("get", exc)
            return [None] * len(keys)
        self.breaker.succeeded()
        return [v.encode() if isinstance(v, str) else v for v in values]

    async def set_many(self, items: dict[str, bytes]) -> None:
        if not items or not self.breaker.available():
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, value, ex=self.ttl_s)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self.breaker.failed("set", exc)
            return
        self.breaker.succeeded()

    async def ping(self) -> bool:
        """Asks Redis even inside the breaker's window: readiness probes are how a recovery is noticed early."""
        try:
            ok = bool(await self.client.ping())
        except (RedisError, OSError) as exc:
            self.breaker.failed("ping", exc)
            return False
        self.breaker.succeeded()
        return ok


def encode_vector(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def decode_vector(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<f4")
