"""Hot-swap notices: a received notice invalidates exactly the named adapter; malformed ones are ignored; publishing
while Redis is unavailable is counted, never raised."""

from __future__ import annotations

import json

import pytest

from service.gateway.adapters.notifier import AdapterNotifier
from service.gateway.adapters.registry import AdapterRegistry
from service.gateway.core.config import RedisSettings
from service.gateway.core.metrics import Metrics
from service.gateway.core.redis import RedisBreaker, make_client
from service.tools.local.redis_server import free_port


class RecordingRegistry(AdapterRegistry):
    def __init__(self) -> None:
        super().__init__(None, 0.5, Metrics())
        self.invalidated: list[tuple[str, str]] = []

    def invalidate(self, tenant: str, name: str) -> None:
        self.invalidated.append((tenant, name))


def notifier(registry: AdapterRegistry) -> tuple[AdapterNotifier, Metrics]:
    metrics = Metrics()
    client = make_client(RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0", socket_timeout_s=0.05))
    return AdapterNotifier(client, RedisBreaker(1.0, metrics), registry, metrics, "chan", 0.1), metrics


def test_a_notice_invalidates_the_named_adapter() -> None:
    registry = RecordingRegistry()
    note, metrics = notifier(registry)
    note._handle(json.dumps({"tenant": "acme", "name": "shop"}).encode())
    assert registry.invalidated == [("acme", "shop")]
    assert metrics.registry.get_sample_value("tipsv2_adapter_notices_total", {"event": "received"}) == 1


@pytest.mark.parametrize("data", [b"not json", b"[]", b'{"tenant": "acme"}', None, b'"x"'])
def test_malformed_notices_are_ignored(data: bytes | None) -> None:
    registry = RecordingRegistry()
    note, _ = notifier(registry)
    note._handle(data)
    assert registry.invalidated == []


async def test_publishing_without_redis_is_counted_not_raised() -> None:
    note, metrics = notifier(RecordingRegistry())
    await note.publish("acme", "shop")
    await note.publish("acme", "shop")  # the breaker is open now: not even tried
    sample = metrics.registry.get_sample_value
    assert sample("tipsv2_adapter_notices_total", {"event": "publish_failed"}) == 2
    assert sample("tipsv2_cache_errors_total", {"operation": "publish"}) == 1
