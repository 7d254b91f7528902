"""Hot-swap notices between gateway replicas over Redis pub/sub.

After a change to an adapter (upload, activation, deletion) the gateway that made it publishes
`{"tenant", "name"}` on the channel; every replica (itself included) drops that name from its registry, so its next
request re-reads the manifest: the swap is visible everywhere within milliseconds. Notices are best effort. When
Redis is down they are lost, and the registry's short revalidation TTL takes over; after a reconnect each replica
drops its whole registry, since it may have missed notices meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.gateway.adapters.registry import AdapterRegistry
from service.gateway.core.metrics import Metrics
from service.gateway.core.redis import RedisBreaker

log = logging.getLogger(__name__)


class AdapterNotifier:
    def __init__(
        self,
        client: aioredis.Redis,
        breaker: RedisBreaker,
        registry: AdapterRegistry,
        metrics: Metrics,
        channel: str,
        reconnect_s: float,
    ) -> None:
        self.client = client
        self.breaker = breaker
        self.registry = registry
        self.metrics = metrics
        self.channel = channel
        self.reconnect_s = max(reconnect_s, 0.05)
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    async def publish(self, tenant: str, name: str) -> None:
        if not self.breaker.available():
            self.metrics.adapter_notices.labels("publish_failed").inc()
            return
        try:
            await self.client.publish(self.channel, json.dumps({"tenant": tenant, "name": name}))
        except (RedisError, OSError) as exc:
            self.breaker.failed("publish", exc)
            self.metrics.adapter_notices.labels("publish_failed").inc()
            return
        self.metrics.adapter_notices.labels("published").inc()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen_forever(), name="adapter-notices")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen_forever(self) -> None:
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                if self.subscribed.is_set():
                    log.warning("adapter notices lost (%s); relying on the registry TTL", type(exc).__name__)
            self.subscribed.clear()
            await asyncio.sleep(self.reconnect_s)

    async def _listen(self) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            self.registry.invalidate_all()  # notices may have been missed while not subscribed
            self.subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    self._handle(message.get("data"))
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _handle(self, data: object) -> None:
        try:
            notice = json.loads(data) if isinstance(data, (bytes, str)) else None
            tenant, name = notice["tenant"], notice["name"]  # type: ignore[index]
        except (ValueError, TypeError, KeyError):
            log.warning("ignoring a malformed adapter notice: %r", data)
            return
        self.metrics.adapter_notices.labels("received").inc()
        self.registry.invalidate(str(tenant), str(name))
