"""Every metric a dashboard panel or an alert rule queries exists: it is in a real scrape of the gateway's /metrics
or of the real tritonserver's metrics port, taken here after driving requests so that labelled series exist.

The one exception is Triton's GPU family (nv_gpu_*), which a server without a GPU (this machine, CI) never exports:
those names must appear whole among the strings of the real libtritonserver instead, so a typo still fails. (Only
names the compiler kept whole qualify: GPU memory and power names are split into 16-byte chunks in the binary and
cannot be checked this way, so the Triton dashboard plots GPU utilisation only.)
"""

from __future__ import annotations

import base64
import io
import re
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.gateway.core.config import Settings, hash_key
from service.tools.local.redis_server import RedisServer, free_port
from service.tools.local.tritonserver import TritonServer, pytriton_root
from tests.deploy.promql import used_metric_names
from tests.integration.gateway_support import (
    adapter_file,
    open_gateway,
    served_model_id,
    tenant_settings,
    unique_name,
    upload,
)

pytestmark = pytest.mark.integration
GPU_ONLY = re.compile(r"^nv_gpu_")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})? \S+", re.MULTILINE)


def sample_names(exposition: str) -> set[str]:
    """Names of the samples in a Prometheus text exposition, exactly as exported (HELP/TYPE lines of a family
    without a sample do not count; prometheus_client's parser is not used because it renames counters)."""
    return {match.group(1) for match in SAMPLE.finditer(exposition)}


def png_base64(size: int = 64) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def fresh_tenant(settings_of: Callable[..., Settings]) -> tuple[Settings, dict[str, str]]:
    """Settings with one tenant of its own (rate-limit windows are per tenant and live in the shared Redis)."""
    key = f"key-{uuid.uuid4().hex}"
    settings = settings_of(api_keys={hash_key(key): unique_name("metrics")})
    return settings, {"Authorization": f"Bearer {key}"}


def drive_gateway(client: TestClient, auth: dict[str, str]) -> None:
    """Requests that create the labelled series the dashboards plot: endpoints and statuses, cache hits and misses,
    an adapter upload, activation and use (Triton loads it into its bank), a refused key."""
    for _ in range(2):  # a miss, then a hit
        assert client.post("/v1/embeddings", json={"input": ["a red circle"]}, headers=auth).status_code == 200
    assert client.post("/v1/embed/image", json={"images": [png_base64()]}, headers=auth).status_code == 200
    name = unique_name("metrics")
    upload(client, auth, name, adapter_file(served_model_id(client)))
    assert client.post(f"/v1/adapters/{name}/activate", json={"version": 1}, headers=auth).status_code == 200
    adapted = client.post("/v1/embeddings", json={"input": "adapted", "adapter": name}, headers=auth)
    assert adapted.status_code == 200, adapted.text
    assert client.post("/v1/embeddings", json={"input": "no key"}).status_code == 401


@pytest.fixture(scope="module")
def scrapes(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path
) -> Iterator[dict[str, set[str]]]:
    def settings_of(redis_url: str = redis_server.url, **overrides: object) -> Settings:
        return tenant_settings(triton, redis_url, tokenizer_path, adapter_store, **overrides)

    texts = []
    settings, auth = fresh_tenant(settings_of)
    with open_gateway(settings) as client:
        drive_gateway(client, auth)
        texts.append(client.get("/metrics").text)
    # A tenant allowed one request per window: the second is refused with 429 and counted per tenant.
    settings, auth = fresh_tenant(lambda **o: settings_of(rate_limit={"requests": 1}, **o))
    with open_gateway(settings) as client:
        statuses = [client.post("/v1/embeddings", json={"input": "x"}, headers=auth).status_code for _ in range(2)]
        assert statuses == [200, 429]
        texts.append(client.get("/metrics").text)
    # A gateway whose Redis is gone: cache errors are counted (and requests still succeed).
    settings, auth = fresh_tenant(lambda **o: settings_of(f"redis://127.0.0.1:{free_port()}/0", **o))
    with open_gateway(settings) as client:
        assert client.post("/v1/embeddings", json={"input": "uncached"}, headers=auth).status_code == 200
        texts.append(client.get("/metrics").text)
    with urllib.request.urlopen(f"http://127.0.0.1:{triton.metrics_port}/metrics", timeout=10) as response:
        triton_metrics = response.read().decode()
    yield {"gateway": set().union(*(sample_names(t) for t in texts)), "triton": sample_names(triton_metrics)}


def test_every_dashboard_and_alert_metric_is_in_a_live_scrape(scrapes: dict[str, set[str]]) -> None:
    scraped = scrapes["gateway"] | scrapes["triton"]
    missing = {
        name: sorted(where)
        for name, where in used_metric_names().items()
        if name not in scraped and not GPU_ONLY.match(name)
    }
    assert not missing, f"metrics queried but absent from the live scrapes: {missing}"


def test_gpu_only_triton_metrics_are_names_the_real_tritonserver_exports() -> None:
    gpu_names = {name for name in used_metric_names() if GPU_ONLY.match(name)}
    assert gpu_names, "the Triton dashboard should plot GPU use"
    known = {m.decode() for m in re.findall(rb"nv_[a-z_]+", _libtritonserver().read_bytes())}
    assert gpu_names <= known, f"not metric names of tritonserver: {sorted(gpu_names - known)}"


def test_scrapes_hold_the_series_of_both_servers(scrapes: dict[str, set[str]]) -> None:
    # Guards the test above against passing on empty scrapes.
    assert "tipsv2_requests_total" in scrapes["gateway"]
    assert "nv_inference_request_success" in scrapes["triton"]


def _libtritonserver() -> Path:
    libraries = sorted((pytriton_root().parent.parent / "nvidia_pytriton.libs").glob("libtritonserver*.so*"))
    assert libraries, "libtritonserver not found next to the bundled tritonserver"
    return libraries[0]
