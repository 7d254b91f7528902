"""With TIPS_METRICS_PORT set, /metrics moves off the public API port onto its own port."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.gateway.app import create_app
from service.gateway.inference.fake import FakeBackend
from service.tools.local.redis_server import free_port
from tests.unit.service.gateway.conftest import AUTH, make_settings


def test_metrics_served_only_on_the_metrics_port_when_configured(tokenizer_path: Path) -> None:
    port = free_port()
    settings = make_settings(tokenizer_path).model_copy(update={"metrics_port": port})
    with TestClient(create_app(settings, backend=FakeBackend())) as client:
        client.post("/v1/embeddings", json={"input": "x"}, headers=AUTH)
        hidden = client.get("/metrics")
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
    assert 'tipsv2_requests_total{endpoint="/v1/embeddings"' in body


def test_metrics_on_the_api_port_by_default(api: TestClient) -> None:
    assert "tipsv2_requests_total" in api.get("/metrics").text


def test_metrics_port_binds_the_configured_address(tokenizer_path: Path) -> None:
    # A host-network deployment keeps the metrics port on loopback: another address of this host must not answer.
    port = free_port()
    settings = make_settings(tokenizer_path).model_copy(update={"metrics_port": port, "metrics_host": "127.0.0.2"})
    with TestClient(create_app(settings, backend=FakeBackend())):
        with urllib.request.urlopen(f"http://127.0.0.2:{port}/metrics", timeout=5) as response:
            assert response.status == 200
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
