"""The Redis embedding cache.

Keys: `tipsv2:emb:{model_id}:{tenant}:{adapter}:{modality}:{options}:{sha256(content)}`, so entries never cross
model versions, tenants (not even for the base model: a shared entry would tell one tenant, by its latency, what
another embedded), adapter versions, modalities or output options. Values are raw little-endian float32 bytes.

Each gateway process keeps the entries it read or wrote last in a bounded in-process LRU in front of Redis
(`LocalCache`): entries are immutable by key (the key names everything the value depends on), so a local copy is
never stale, and a repeated input costs no round trip. Keys are exactly Redis's, tenant and adapter version included.

Redis is an optimisation, never a dependency: every failure or timeout counts as a miss, is counted in metrics, and
opens the shared circuit breaker (`service.gateway.core.redis`) during which Redis is not asked at all, so a dead or
slow Redis costs requests nothing but the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.gateway.core.redis import RedisBreaker


def content_hash(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def cache_key(model_id: str, tenant: str, adapter: str, modality: str, options: str, digest: str) -> str:
    return f"tipsv2:emb:{model_id}:{tenant}:{adapter or '-'}:{modality}:{options}:{digest}"


class LocalCache:
    """A bounded LRU of cache values by key, in bytes of values held (0 disables it)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0
        self._entries: OrderedDict[str, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.held -= len(old)
        self._entries[key] = value
        self.held += len(value)
        while self.held > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.held -= len(evicted)


class Quota(Protocol):
    """A rate-limit check that can read cache keys in its own round trip (`service.gateway.ratelimit.TenantQuota`)."""

    async def check_and_read(self, keys: Sequence[str]) -> list[bytes | None] | None:
        """Raises GatewayError(RATE_LIMITED) when refused; the values, or None when Redis was not asked."""
        ...


class EmbeddingCache:
    def __init__(self, client: aioredis.Redis, breaker: RedisBreaker, ttl_s: int, local_bytes: int = 0) -> None:
        self.client = client
        self.breaker = breaker
        self.ttl_s = ttl_s
        self.local = LocalCache(local_bytes)
        self._writes: dict[str, bytes] = {}  # waiting for the next pipeline
        self._written: asyncio.Future[None] | None = None  # resolved once that pipeline is done
        self._flushing: set[asyncio.Task[None]] = set()

    @property
    def up(self) -> bool:
        return self.breaker.up

    async def get_many(self, keys: Sequence[str], quota: Quota | None = None) -> list[bytes | None]:
        """Values by key (None: miss), from the local LRU, then Redis. A `quota` is checked in the same round trip
        as the Redis read (or alone when the LRU answered every key) and raises when it refuses."""
        values = [self.local.get(key) for key in keys]
        missing = [i for i, value in enumerate(values) if value is None]
        fetched = await quota.check_and_read([keys[i] for i in missing]) if quota is not None else None
        if fetched is None and missing:
            fetched = await self._mget([keys[i] for i in missing])
        for i, value in zip(missing, fetched or (), strict=False):
            if value is not None:
                values[i] = value
                self.local.put(keys[i], value)
        return values

    async def _mget(self, keys: list[str]) -> list[bytes | None]:
        if not self.breaker.available():
            return [None] * len(keys)
        try:
            values = await self.client.mget(keys)
        except (RedisError, OSError) as exc:
            self.breaker.failed("get", exc)
            return [None] * len(keys)
        self.breaker.succeeded()
        return [v.encode() if isinstance(v, str) else v for v in values]

    async def set_many(self, items: dict[str, bytes]) -> None:
        """Writes through the LRU to Redis. Writes of the requests that finish in the same event-loop turn (a
        batch's requests all do) go in one pipeline; each caller waits for it, so a reply is sent only once its
        vectors are in Redis, where other replicas find them."""
        for key, value in items.items():
            self.local.put(key, value)
        if not items or not self.breaker.available():
            return
        self._writes.update(items)
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(self._flush_writes)
        await asyncio.shield(self._written)

    def _flush_writes(self) -> None:
        items, self._writes = self._writes, {}
        done, self._written = self._written, None
        task = asyncio.get_running_loop().create_task(self._write(items))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)
        task.add_done_callback(lambda _: _resolve(done))

    async def _write(self, items: dict[str, bytes]) -> None:
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


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def encode_vector(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def decode_vector(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<f4")
