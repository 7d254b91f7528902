"""What the stack tests share: the running stack's handles, log lines, request payloads, scrapes."""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.deploy.promql import used_metric_names
from tests.deploy.test_metric_names import sample_names
from tests.stack.compose import Compose, Ports


def say(message: str) -> None:
    """A line in the CI log (the stack tests run with -s)."""
    print(f"[stack {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Stack:
    compose: Compose
    ports: Ports
    headers: dict[str, str]
    embed_dim: int
    model_id: str
    model_repository: Path
    timings: dict[str, float] = field(default_factory=dict)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.ports.url("gateway"), headers=self.headers, timeout=60)

    def prometheus(self, path: str, **params: str) -> Any:
        """The `data` of a Prometheus HTTP API answer."""
        response = httpx.get(f"{self.ports.url('prometheus')}{path}", params=params, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]


def dashboard_and_alert_metrics() -> set[str]:
    return set(used_metric_names())


def exported_names(url: str) -> set[str]:
    """Metric names in one scrape of `url`, as exported."""
    return sample_names(httpx.get(url, timeout=10).text)


def png_base64(size: int = 64, colour: tuple[int, int, int] = (200, 30, 30)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()
