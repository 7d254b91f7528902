"""API-layer unit tests run the real app against the deterministic FakeBackend and an unreachable Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.gateway.app import create_app
from service.gateway.core.config import LimitSettings, RedisSettings, Settings, hash_key
from service.gateway.inference.fake import FakeBackend
from service.tools.local.redis_server import free_port

KEY = "unit-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
ACME = {"Authorization": "Bearer acme-unit-key"}
GLOBEX = {"Authorization": "Bearer globex-unit-key"}


def make_settings(tokenizer_path: Path, **limits: int) -> Settings:
    return Settings(
        dev_api_key=KEY,
        tokenizer_path=tokenizer_path,
        redis=RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0", socket_timeout_s=0.05),
        limits=LimitSettings(**limits),
    )


@pytest.fixture
def fake_backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def api(tokenizer_path: Path, fake_backend: FakeBackend) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tokenizer_path), backend=fake_backend)) as client:
        yield client


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    path = tmp_path / "adapters"  # a store's root must exist (a missing one is a missing volume: 503)
    path.mkdir()
    return path


@pytest.fixture
def tenants_api(tokenizer_path: Path, store_dir: Path) -> Iterator[TestClient]:
    """Two tenants (acme, globex) and an adapter store; the fake backend serves the adapters whose file exists, as
    Triton's adapter bank does."""

    def in_store(adapter_id: str) -> bool:
        tenant, name, version, digest = adapter_id.split("/")
        return (store_dir / tenant / name / f"v{version}-{digest}.safetensors").is_file()

    settings = make_settings(tokenizer_path).model_copy(
        update={
            "api_keys": {hash_key("acme-unit-key"): "acme", hash_key("globex-unit-key"): "globex"},
            "adapter_store": store_dir,
        }
    )
    with TestClient(create_app(settings, backend=FakeBackend(known_adapters=in_store))) as client:
        yield client
