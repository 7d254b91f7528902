"""/readyz follows Triton: 503 while it is stopped, 200 again once it is back, without restarting the gateway."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.gateway.app import create_app
from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer
from tests.conftest import start_triton
from tests.integration.conftest import AUTH, gateway_settings

pytestmark = pytest.mark.integration


def wait_for_status(client: TestClient, status: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/readyz")
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            return response.json()
        time.sleep(0.2)


def test_readyz_follows_triton(
    model_repository: Path, build_dir: Path, redis_server: RedisServer, tokenizer_path: Path
) -> None:
    own = start_triton(model_repository, build_dir / "triton-readiness")
    try:
        app = create_app(gateway_settings(own, redis_server.url, tokenizer_path))
        with TestClient(app) as client:
            assert wait_for_status(client, 200)["status"] == "ready"
            own.stop()
            body = wait_for_status(client, 503)
            assert body["status"] == "not_ready" and not body["triton"]
            down = client.post("/v1/embeddings", json={"input": "while triton is down"}, headers=AUTH)
            assert down.status_code == 503 and "Retry-After" in down.headers
            assert down.json()["error"]["code"] == "triton_unavailable"
            restarted = TritonServer(own.repository, own.workdir, own.http_port, own.grpc_port, own.metrics_port)
            restarted.start(timeout=120)
            own = restarted
            assert wait_for_status(client, 200)["triton"]
            assert client.post("/v1/embeddings", json={"input": "after restart"}, headers=AUTH).status_code == 200
    finally:
        own.stop()
