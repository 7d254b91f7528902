"""Helpers of the gateway's end-to-end tests: tenants and keys, adapter files, images, metrics, Triton statistics."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import tritonclient.grpc as grpcclient
from fastapi.testclient import TestClient
from PIL import Image

from service.gateway.app import create_app
from service.gateway.core.config import RedisSettings, Settings, TritonSettings, hash_key
from service.tools.local.redis_server import free_port
from service.tools.local.tritonserver import TritonServer
from training.adalink.samples import random_adapter

KEYS = {"acme": "acme-integration-key", "globex": "globex-integration-key"}
ACME = {"Authorization": f"Bearer {KEYS['acme']}"}
GLOBEX = {"Authorization": f"Bearer {KEYS['globex']}"}


def tenant_settings(
    triton: TritonServer, redis_url: str, tokenizer_path: Path, adapter_store: Path, **overrides: object
) -> Settings:
    """Two tenants (acme, globex), the session's adapter store (the one Triton reads), a generous rate limit."""
    fields: dict[str, object] = {
        "api_keys": {hash_key(key): tenant for tenant, key in KEYS.items()},
        "tokenizer_path": tokenizer_path,
        "adapter_store": adapter_store,
        "triton": TritonSettings(url=f"127.0.0.1:{triton.grpc_port}", timeout_s=30),
        "redis": RedisSettings(url=redis_url, retry_interval_s=0.2),
        "rate_limit": {"requests": 100_000},
    }
    fields.update(overrides)
    return Settings(**fields)  # type: ignore[arg-type]


def settings_env(settings: Settings) -> dict[str, str]:
    """The TIPS_* environment that makes a gateway process read `settings` (for uvicorn in a subprocess)."""
    return {
        "TIPS_API_KEYS": json.dumps(settings.api_keys),
        "TIPS_TOKENIZER_PATH": str(settings.tokenizer_path),
        "TIPS_ADAPTER_STORE": str(settings.adapter_store),
        "TIPS_TRITON__URL": settings.triton.url,
        "TIPS_REDIS__URL": settings.redis.url,
        "TIPS_REDIS__RETRY_INTERVAL_S": str(settings.redis.retry_interval_s),
        "TIPS_RATE_LIMIT__REQUESTS": str(settings.rate_limit.requests),
        "TIPS_ADAPTERS__REVALIDATE_S": str(settings.adapters.revalidate_s),
    }


@contextlib.contextmanager
def open_gateway(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def unique_name(prefix: str = "ad") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def served_model_id(client: TestClient) -> str:
    body = client.get("/readyz").json()
    assert body["model_id"], body
    return str(body["model_id"])


def adapter_file(
    model_id: str,
    dim: int = 64,
    seed: int = 0,
    modalities: tuple[str, ...] = ("image", "text"),
    rank: int = 4,
    scale: float = 0.05,
) -> bytes:
    """A valid AdaLink file for the served model whose effect is large enough to change every embedding."""
    return random_adapter(
        model_id, dim, seed=seed, rank=rank, modalities=modalities, down_scale=scale, up_scale=scale * 10, task="it"
    )


def upload(client: TestClient, headers: dict[str, str], name: str, data: bytes) -> dict:
    response = client.post(
        "/v1/adapters", files={"file": ("a.safetensors", data)}, data={"name": name}, headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def png_bytes(seed: int, size: tuple[int, int] = (300, 200)) -> bytes:
    """A PNG of `size` (width, height): smooth colour blobs, so segmentation has regions rather than noise."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), dtype=np.float32)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(20, 80)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        image += blob[..., None] * rng.uniform(0, 255, 3)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`, from a Prometheus text exposition."""
    total = 0.0
    for line in text.splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and all(
            f'{k}="{v}"' in line for k, v in labels.items()
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def triton_stats(triton: TritonServer, settle_s: float = 0.05) -> dict[str, int]:
    """Inference count per model (statistics restart when a model is reloaded). Triton counts a request when it
    releases it, which can be just after the response reached the client: read until two reads `settle_s` apart
    agree, so a request just answered is counted."""
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{triton.grpc_port}")

    def read() -> dict[str, int]:
        stats = client.get_inference_statistics(as_json=True)["model_stats"]
        return {s["name"]: int(s.get("inference_count", 0)) for s in stats}

    counts = read()
    for _ in range(20):
        time.sleep(settle_s)
        again = read()
        if again == counts:
            break
        counts = again
    return counts


def triton_index(triton: TritonServer) -> list[tuple[str, str, str]]:
    """(name, version, state) of every model in Triton's repository index."""
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{triton.grpc_port}")
    index = client.get_model_repository_index(as_json=True).get("models", [])
    return sorted((m["name"], m.get("version", ""), m.get("state", "")) for m in index)


class GatewayProcess:
    """A second gateway: uvicorn in its own process, configured only through TIPS_* variables, as in production;
    `workers` > 1 runs it as production does (`python -m service.gateway.workers`)."""

    def __init__(self, settings: Settings, workdir: Path, workers: int = 1, **env: str) -> None:
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **settings_env(settings), **env}
        self.log = workdir / f"gateway-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> GatewayProcess:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "service.gateway.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if self.workers > 1:
            command = [sys.executable, "-m", "service.gateway.workers", "--workers", str(self.workers)]
            command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        self.__exit__()
        raise AssertionError(f"gateway process not ready: {self.log.read_text()}")

    def __exit__(self, *exc: object) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
