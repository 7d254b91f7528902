"""The adapter store: durable versioned files named as Triton reads them, versions never reused, writers serialised
across threads and processes."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from pathlib import Path

import pytest

from service.gateway.adapters.store import AdapterManifest, AdapterStore
from service.gateway.core.errors import GatewayError
from training.contracts.adapter_store import AdapterId

META = {"modalities": "image,text", "rank": "4"}


def add(store: AdapterStore, data: bytes, name: str = "shop", activate: bool = True, tenant: str = "acme"):  # type: ignore[no-untyped-def]
    return store.add_version(tenant, name, data, META, activate)


def test_file_is_named_by_version_and_digest_where_the_triton_bank_looks(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path)
    manifest, stored = add(store, b"adapter bytes")
    adapter_id = manifest.adapter_id(stored)
    assert stored.digest == hashlib.sha256(b"adapter bytes").hexdigest()[:16]
    assert adapter_id == f"acme/shop/1/{stored.digest}"
    assert AdapterId.parse(adapter_id).path(tmp_path) == store.file_path("acme", "shop", stored)
    assert store.file_path("acme", "shop", stored).read_bytes() == b"adapter bytes"


def test_files_are_readable_by_tritons_user(tmp_path: Path) -> None:
    # Triton reads the store as another uid than the gateway's (images, compose, chart): 0644, not mkstemp's 0600.
    store = AdapterStore(tmp_path)
    _, stored = add(store, b"adapter bytes")
    directory = store.file_path("acme", "shop", stored).parent
    for path in (store.file_path("acme", "shop", stored), directory / "manifest.json"):
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_versions_count_up_and_the_new_one_is_active_unless_told_otherwise(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path)
    add(store, b"one")
    manifest, stored = add(store, b"two", activate=False)
    assert stored.version == 2 and manifest.active == 1
    manifest, stored = add(store, b"three")
    assert [v.version for v in manifest.versions] == [1, 2, 3] and manifest.active == 3


def test_first_version_is_active_even_without_activate(tmp_path: Path) -> None:
    manifest, _ = add(AdapterStore(tmp_path), b"one", activate=False)
    assert manifest.active == 1


def test_versions_are_never_reused_after_delete_and_recreate(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path)
    add(store, b"one")
    add(store, b"two")
    removed = store.delete("acme", "shop")
    assert [v.version for v in removed] == [1, 2]
    assert not any(p.suffix == ".safetensors" for p in (tmp_path / "acme" / "shop").iterdir())
    assert store.read("acme", "shop").deleted  # type: ignore[union-attr]
    assert store.list_adapters("acme") == []
    _, stored = add(store, b"one again")
    assert stored.version == 3


def test_deleting_the_active_version_is_a_conflict(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path)
    add(store, b"one")
    add(store, b"two")
    with pytest.raises(GatewayError) as info:
        store.delete("acme", "shop", 2)
    assert info.value.status == 409
    assert [v.version for v in store.delete("acme", "shop", 1)] == [1]
    assert [v.version for v in store.get("acme", "shop").versions] == [2]


def test_activate_switches_and_unknown_versions_are_404(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path)
    add(store, b"one")
    add(store, b"two")
    assert store.activate("acme", "shop", 1).active == 1
    for call in (lambda: store.activate("acme", "shop", 9), lambda: store.activate("acme", "other", 1)):
        with pytest.raises(GatewayError) as info:
            call()
        assert info.value.status == 404


def test_tenants_do_not_see_each_other(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path)
    add(store, b"one", tenant="acme")
    assert store.list_adapters("globex") == [] and store.read("globex", "shop") is None
    with pytest.raises(GatewayError) as info:
        store.get("globex", "shop")
    assert info.value.status == 404


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", "", "UPPER", "x" * 65])
def test_names_that_are_not_plain_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(GatewayError) as info:
        AdapterStore(tmp_path).add_version("acme", name, b"x", META)
    assert info.value.status == 400 and info.value.code == "invalid_adapter_name"


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path)
    add(store, b"one")
    store.activate("acme", "shop", 1)
    names = {p.name for p in (tmp_path / "acme" / "shop").iterdir()}
    assert not [n for n in names if n.startswith(".tmp-")] and "manifest.json" in names


def test_manifest_round_trips(tmp_path: Path) -> None:
    manifest, _ = add(AdapterStore(tmp_path), b"one")
    assert AdapterManifest.from_json(manifest.to_json()) == manifest


def test_concurrent_threads_get_distinct_versions(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path)
    versions: list[int] = []
    threads = [
        threading.Thread(target=lambda i=i: versions.append(add(store, bytes([i]) * 100)[1].version)) for i in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 17))
    assert len(store.get("acme", "shop").versions) == 16


def _upload_from_another_process(root: str, index: int) -> int:
    return AdapterStore(root).add_version("acme", "shop", bytes([index]) * 1000, META)[1].version


def test_concurrent_processes_get_distinct_versions(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        versions = pool.starmap(_upload_from_another_process, [(str(tmp_path), i) for i in range(12)])
    assert sorted(versions) == list(range(1, 13))
    manifest = AdapterStore(tmp_path).get("acme", "shop")
    for stored in manifest.versions:  # every file whole: the digest in its name is the digest of its bytes
        data = AdapterStore(tmp_path).file_path("acme", "shop", stored).read_bytes()
        assert hashlib.sha256(data).hexdigest() == stored.sha256


def test_unwritable_store_is_503(tmp_path: Path) -> None:
    (tmp_path / "acme").write_text("a file where a directory should be")
    with pytest.raises(GatewayError) as info:
        add(AdapterStore(tmp_path), b"one")
    assert info.value.status == 503 and info.value.code == "adapter_store_unavailable"


def test_listing_pages_by_name_and_skips_deleted_names(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path)
    for name in ("d", "a", "c", "b", "e"):
        add(store, name.encode(), name=name)
    store.delete("acme", "b")  # a tombstone: not listed, and it does not shorten a page

    def names(manifests: list[AdapterManifest]) -> list[str]:
        return [m.name for m in manifests]

    assert names(store.list_adapters("acme")) == ["a", "c", "d", "e"]
    assert names(store.list_adapters("acme", limit=2)) == ["a", "c"]
    assert names(store.list_adapters("acme", after="a", limit=2)) == ["c", "d"]
    assert names(store.list_adapters("acme", after="d")) == ["e"]
    assert store.list_adapters("acme", after="e", limit=2) == []
