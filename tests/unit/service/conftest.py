"""API-layer unit tests run the real app against the deterministic FakeBackend and an unreachable Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.core.config import LimitSettings, RedisSettings, Settings
from service.inference.fake import FakeBackend
from service.local.redis_server import free_port

KEY = "unit-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


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
