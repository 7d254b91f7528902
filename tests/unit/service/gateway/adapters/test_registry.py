"""The registry resolves references per tenant from cached manifests: a notice invalidates at once, a changed
manifest is noticed within the revalidation TTL, and unknown or foreign adapters are 404."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.gateway.adapters.registry import AdapterRegistry, ResolvedAdapter
from service.gateway.adapters.store import AdapterStore
from service.gateway.core.errors import GatewayError
from service.gateway.core.metrics import Metrics

META = {"modalities": "text", "rank": "4"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> AdapterStore:
    return AdapterStore(tmp_path)


def reloads_of(reg: AdapterRegistry) -> float | None:
    return reg.metrics.registry.get_sample_value("tipsv2_adapter_registry_reloads_total")


def registry(store: AdapterStore | None, clock: Clock, ttl: float = 0.5) -> AdapterRegistry:
    return AdapterRegistry(store, ttl, Metrics(), clock=clock)


async def test_resolves_the_active_version_and_pinned_versions(store: AdapterStore) -> None:
    store.add_version("acme", "shop", b"one", META)
    _, two = store.add_version("acme", "shop", b"two", META)
    reg = registry(store, Clock())
    active = await reg.resolve("acme", "shop")
    assert (active.name, active.version, active.adapter_id) == ("shop", 2, f"acme/shop/2/{two.digest}")
    assert (await reg.resolve("acme", "shop@1")).version == 1
    assert active.modalities == ("text",)


@pytest.mark.parametrize(
    ("tenant", "ref", "code"),
    [
        ("acme", "missing", "adapter_not_found"),
        ("acme", "shop@7", "adapter_version_not_found"),
        ("globex", "shop", "adapter_not_found"),
        ("globex", "shop@1", "adapter_not_found"),
    ],
)
async def test_unknown_and_foreign_references_are_404(store: AdapterStore, tenant: str, ref: str, code: str) -> None:
    store.add_version("acme", "shop", b"one", META)
    with pytest.raises(GatewayError) as info:
        await registry(store, Clock()).resolve(tenant, ref)
    assert info.value.status == 404 and info.value.code == code


async def test_without_a_store_every_adapter_is_unknown() -> None:
    with pytest.raises(GatewayError) as info:
        await registry(None, Clock()).resolve("acme", "shop")
    assert info.value.status == 404


async def test_a_cached_manifest_is_trusted_within_the_ttl_and_revalidated_after(store: AdapterStore) -> None:
    clock = Clock()
    store.add_version("acme", "shop", b"one", META)
    reg = registry(store, clock)
    assert (await reg.resolve("acme", "shop")).version == 1
    store.add_version("acme", "shop", b"two", META)  # another replica's upload; no notice reaches us
    clock.now += 0.4
    assert (await reg.resolve("acme", "shop")).version == 1
    clock.now += 0.2
    assert (await reg.resolve("acme", "shop")).version == 2


async def test_an_unchanged_manifest_is_not_read_again(store: AdapterStore) -> None:
    clock = Clock()
    store.add_version("acme", "shop", b"one", META)
    reg = registry(store, clock)
    await reg.resolve("acme", "shop")
    reloads = reloads_of(reg)
    for _ in range(5):
        clock.now += 1.0
        await reg.resolve("acme", "shop")
    assert reloads_of(reg) == reloads


async def test_a_notice_invalidates_at_once(store: AdapterStore) -> None:
    store.add_version("acme", "shop", b"one", META)
    reg = registry(store, Clock(), ttl=3600)
    await reg.resolve("acme", "shop")
    store.activate("acme", "shop", 1)
    store.add_version("acme", "shop", b"two", META)
    assert (await reg.resolve("acme", "shop")).version == 1  # cached for an hour...
    reg.invalidate("acme", "shop")
    assert (await reg.resolve("acme", "shop")).version == 2  # ... unless told


async def test_unknown_names_are_cached_too(store: AdapterStore) -> None:
    clock = Clock()
    reg = registry(store, clock)
    for _ in range(3):
        with pytest.raises(GatewayError):
            await reg.resolve("acme", "ghost")
    assert reloads_of(reg) == 1


def test_adapter_ids_are_sent_only_for_the_modalities_an_adapter_adapts() -> None:
    image_only = ResolvedAdapter("shop", 1, "acme/shop/1/abc", ("image",))
    assert image_only.id_for("image") == "acme/shop/1/abc" and image_only.id_for("text") == ""
    with pytest.raises(GatewayError) as info:
        image_only.require("text")
    assert info.value.status == 400 and info.value.code == "adapter_modality_mismatch"
