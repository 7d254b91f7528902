"""Resolves `name` / `name@version` to an immutable adapter id, per tenant, from an in-memory cache of manifests.

Hot swap without a round trip to disk per request: each gateway caches manifests, and an entry is trusted for at
most `revalidate_s` before a stat of the manifest file decides whether to re-read it (the store replaces manifests
by rename, so a new inode means a new manifest). A Redis notice (see `notifier`) drops an entry at once; the TTL
makes swaps visible within it even when notices are lost (Redis down). Another tenant's adapter simply does not
exist under this tenant's directory: 404, never 403, so names do not leak.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

from service.gateway.adapters.store import AdapterManifest, AdapterStore, not_found
from service.gateway.core.errors import ErrorKind, GatewayError
from service.gateway.core.metrics import Metrics

Signature = tuple[int, int, int]  # (inode, mtime_ns, size) of a manifest file


@dataclass(frozen=True)
class ResolvedAdapter:
    """An adapter reference resolved for one tenant: `adapter_id` is what Triton's adapter bank loads."""

    name: str
    version: int
    adapter_id: str  # "tenant/name/version/digest"
    modalities: tuple[str, ...] = ("image", "text")

    def id_for(self, modality: str) -> str:
        """The id to send with inputs of `modality`; "" (the base model) when this adapter does not adapt it."""
        return self.adapter_id if modality in self.modalities else ""

    def require(self, modality: str) -> str:
        if modality not in self.modalities:
            raise GatewayError(
                ErrorKind.INVALID_REQUEST,
                f"adapter {self.name!r} version {self.version} adapts {', '.join(self.modalities)}, not {modality}",
                code="adapter_modality_mismatch",
                param="adapter",
            )
        return self.adapter_id


@dataclass
class _Entry:
    manifest: AdapterManifest | None
    signature: Signature | None
    checked_at: float


class AdapterRegistry:
    def __init__(
        self,
        store: AdapterStore | None,
        revalidate_s: float,
        metrics: Metrics,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.revalidate_s = revalidate_s
        self.metrics = metrics
        self.capacity = capacity
        self.clock = clock
        self._entries: collections.OrderedDict[tuple[str, str], _Entry] = collections.OrderedDict()
        # Bumped by every invalidation, so that a reload that started before a notice cannot store stale content.
        self._generation = 0

    def invalidate(self, tenant: str, name: str) -> None:
        self._generation += 1
        self._entries.pop((tenant, name), None)

    def invalidate_all(self) -> None:
        self._generation += 1
        self._entries.clear()

    async def resolve(self, tenant: str, ref: str) -> ResolvedAdapter:
        name, _, version_text = ref.partition("@")
        manifest = await self.manifest(tenant, name)
        if manifest is None or not manifest.exists:
            raise not_found(name)
        if version_text:
            stored = manifest.version(int(version_text))
            if stored is None:
                raise not_found(name, int(version_text))
        else:
            stored = manifest.active_version
            if stored is None:
                raise GatewayError(
                    ErrorKind.NOT_FOUND,
                    f"adapter {name!r} has no active version; name one as {name}@<version> or activate one",
                    code="adapter_version_not_found",
                    param="adapter",
                )
        return ResolvedAdapter(name, stored.version, manifest.adapter_id(stored), stored.modalities)

    async def manifest(self, tenant: str, name: str) -> AdapterManifest | None:
        if self.store is None:
            return None
        key = (tenant, name)
        entry = self._entries.get(key)
        now = self.clock()
        if entry is not None and now - entry.checked_at < self.revalidate_s:
            return entry.manifest
        generation = self._generation
        signature = await asyncio.to_thread(self.store.signature, tenant, name)
        if entry is not None and signature == entry.signature:
            entry.checked_at = now
            return entry.manifest
        manifest = await asyncio.to_thread(self.store.read, tenant, name)
        self.metrics.adapter_registry_reloads.inc()
        if generation == self._generation:
            self._remember(key, _Entry(manifest, signature, now))
        return manifest

    def _remember(self, key: tuple[str, str], entry: _Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
