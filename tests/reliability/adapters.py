"""Adapter checks shared by the reliability tests: upload and use through a gateway's URL, and whether the store on
disk is whole."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from service.gateway.adapters.store import AdapterStore
from tests.integration.gateway_support import ACME
from training.contracts.adapter_file import validate_adapter


def post_upload(url: str, name: str, data: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/adapters", files={"file": ("a.safetensors", data)}, data={"name": name}, headers=ACME, timeout=60
    )


def without_active(version: dict) -> dict:
    return {k: v for k, v in version.items() if k != "active"}


def served_version(url: str, ref: str) -> int:
    response = httpx.post(f"{url}/v1/embeddings", json={"input": "durable?", "adapter": ref}, headers=ACME, timeout=30)
    assert response.status_code == 200, response.text
    return int(response.json()["adapter"]["version"])


def assert_store_is_whole(store: Path, tenant: str, name: str, model_id: str) -> None:
    """Every listed version's file exists, validates for the served model and hashes to the digest in its name;
    no temporary file is left and no file is unlisted."""
    manifest = AdapterStore(store).get(tenant, name)
    folder = store / tenant / name
    listed = set()
    for version in manifest.versions:
        path = AdapterStore(store).file_path(tenant, name, version)
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == version.sha256 and version.sha256.startswith(version.digest)
        validate_adapter(data, base_hash=model_id, dim=64)
        listed.add(path.name)
    on_disk = {p.name for p in folder.iterdir() if p.suffix == ".safetensors"}
    assert on_disk == listed, f"unlisted files: {on_disk - listed}"
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".tmp-")]
