"""The in-process LRU in front of Redis: bounded in bytes, least recently used out first, and serving its entries
while Redis is unreachable (Redis itself is exercised in tests/integration)."""

from __future__ import annotations

from service.gateway.cache import EmbeddingCache, LocalCache
from service.gateway.core.config import RedisSettings
from service.gateway.core.metrics import Metrics
from service.gateway.core.redis import RedisBreaker, make_client
from service.tools.local.redis_server import free_port


def test_the_lru_is_bounded_in_bytes_and_evicts_the_least_recently_used() -> None:
    lru = LocalCache(max_bytes=10)
    lru.put("a", b"1234")
    lru.put("b", b"1234")
    assert lru.get("a") == b"1234"  # a is now the most recent
    lru.put("c", b"1234")
    assert lru.get("b") is None and lru.get("a") == b"1234" and lru.get("c") == b"1234"
    assert lru.held == 8 and len(lru) == 2


def test_a_value_larger_than_the_lru_is_not_kept_and_zero_disables_it() -> None:
    lru = LocalCache(max_bytes=3)
    lru.put("a", b"1234")
    assert lru.get("a") is None and lru.held == 0
    off = LocalCache(max_bytes=0)
    off.put("a", b"1")
    assert off.get("a") is None


async def test_entries_written_are_served_locally_while_redis_is_unreachable() -> None:
    metrics = Metrics()
    client = make_client(RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0", socket_timeout_s=0.05))
    cache = EmbeddingCache(client, RedisBreaker(1.0, metrics), ttl_s=60, local_bytes=1 << 20)
    await cache.set_many({"k1": b"v1"})
    assert await cache.get_many(["k1", "k2"]) == [b"v1", None]
    await client.aclose()
