"""Gateway fixtures wired to the real servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.gateway.app import create_app
from service.gateway.core.config import RedisSettings, Settings, TritonSettings
from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer

API_KEY = "integration-test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def gateway_settings(triton: TritonServer, redis_url: str, tokenizer_path: Path, **overrides: object) -> Settings:
    return Settings(
        dev_api_key=API_KEY,
        tokenizer_path=tokenizer_path,
        triton=TritonSettings(url=f"127.0.0.1:{triton.grpc_port}", timeout_s=30),
        redis=RedisSettings(url=redis_url, retry_interval_s=0.2),
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture
def gateway(triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path) -> Iterator[TestClient]:
    app = create_app(gateway_settings(triton, redis_server.url, tokenizer_path))
    with TestClient(app) as client:
        yield client
