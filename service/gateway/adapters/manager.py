"""Adapter operations behind the `/v1/adapters` routes: validate, store, tell the replicas, count.

Validation is the shared AdaLink validator (`training.contracts.adapter_file`): it parses the safetensors header itself
and never unpickles anything, and the adapter must have been trained for the served model (base hash and width).
"""

from __future__ import annotations

import asyncio

from service.gateway.adapters.notifier import AdapterNotifier
from service.gateway.adapters.registry import AdapterRegistry
from service.gateway.adapters.store import AdapterManifest, AdapterStore, StoredVersion
from service.gateway.core.errors import ErrorKind, GatewayError, invalid
from service.gateway.core.metrics import Metrics
from service.gateway.inference.backend import ServedModelInfo
from training.contracts.adapter_file import AdapterInfo, AdapterValidationError, validate_adapter


class AdapterManager:
    def __init__(
        self,
        store: AdapterStore | None,
        registry: AdapterRegistry,
        notifier: AdapterNotifier,
        metrics: Metrics,
        max_bytes: int,
    ) -> None:
        self._store = store
        self.registry = registry
        self.notifier = notifier
        self.metrics = metrics
        self.max_bytes = max_bytes

    @property
    def store(self) -> AdapterStore:
        if self._store is None:
            raise GatewayError(
                ErrorKind.STORAGE_UNAVAILABLE,
                "this gateway has no adapter store (set TIPS_ADAPTER_STORE)",
                code="adapter_store_not_configured",
            )
        return self._store

    async def upload(
        self, tenant: str, name: str, data: bytes, served: ServedModelInfo, activate: bool
    ) -> tuple[AdapterManifest, StoredVersion]:
        store = self.store
        store.adapter_dir(tenant, name)  # refuses a bad name before any work
        try:
            info = await asyncio.to_thread(self._validate, data, served)
            manifest, stored = await asyncio.to_thread(
                store.add_version, tenant, name, data, {**info.metadata(), "sha256": info.sha256}, activate
            )
        except GatewayError as exc:
            self.metrics.adapter_uploads.labels(tenant, _outcome(exc)).inc()
            raise
        self.metrics.adapter_uploads.labels(tenant, "accepted").inc()
        await self._changed(tenant, name)
        return manifest, stored

    def _validate(self, data: bytes, served: ServedModelInfo) -> AdapterInfo:
        if not data:
            raise invalid("the adapter file is empty", code="invalid_adapter", param="file")
        if len(data) > self.max_bytes:
            raise GatewayError(
                ErrorKind.PAYLOAD_TOO_LARGE,
                f"adapter is {len(data)} bytes, above the limit of {self.max_bytes}",
                code="adapter_too_large",
                param="file",
            )
        try:
            return validate_adapter(data, base_hash=served.model_id, dim=served.embed_dim, max_bytes=self.max_bytes)
        except AdapterValidationError as exc:
            raise invalid(f"invalid adapter: {exc}", code="invalid_adapter", param="file") from exc

    async def activate(self, tenant: str, name: str, version: int) -> AdapterManifest:
        manifest = await asyncio.to_thread(self.store.activate, tenant, name, version)
        self.metrics.adapter_activations.labels(tenant).inc()
        await self._changed(tenant, name)
        return manifest

    async def delete(self, tenant: str, name: str, version: int | None) -> list[StoredVersion]:
        removed = await asyncio.to_thread(self.store.delete, tenant, name, version)
        self.metrics.adapter_deletions.labels(tenant).inc()
        await self._changed(tenant, name)
        return removed

    async def show(self, tenant: str, name: str) -> AdapterManifest:
        return await asyncio.to_thread(self.store.get, tenant, name)

    async def list_adapters(
        self, tenant: str, after: str | None = None, limit: int | None = None
    ) -> list[AdapterManifest]:
        if self._store is None:
            return []
        return await asyncio.to_thread(self._store.list_adapters, tenant, after, limit)

    async def _changed(self, tenant: str, name: str) -> None:
        self.registry.invalidate(tenant, name)  # this replica at once; the others through the notice
        await self.notifier.publish(tenant, name)


def _outcome(error: GatewayError) -> str:
    return {
        ErrorKind.INVALID_REQUEST: "invalid",
        ErrorKind.PAYLOAD_TOO_LARGE: "too_large",
    }.get(error.kind, "error")
