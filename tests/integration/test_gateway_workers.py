"""Several gateway processes per pod (`python -m service.gateway.workers`): every worker serves, each on its own core,
and /metrics counts the requests of all of them, on the API port or on the metrics port the supervisor serves."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from service.tools.local.redis_server import RedisServer, free_port
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import ACME, GatewayProcess, metric_value, tenant_settings

pytestmark = pytest.mark.integration


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def request_counts(text: str) -> float:
    return metric_value(text, "tipsv2_requests_total", endpoint="/v1/embeddings", status="200")


def test_two_workers_serve_on_their_own_cores_and_metrics_sum_over_both(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path, tmp_path: Path
) -> None:
    settings = tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store)
    with GatewayProcess(settings, tmp_path, workers=2) as gateway:
        assert gateway.process is not None
        workers = [
            pid for pid in children(gateway.process.pid) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(workers) == 2, workers
        if len(os.sched_getaffinity(0)) >= 2:
            cores = [os.sched_getaffinity(pid) for pid in workers]
            assert all(len(c) == 1 for c in cores) and cores[0] != cores[1]
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            # new connections: the kernel spreads them over the two workers' sockets
            for i in range(40):
                response = httpx.post(f"{gateway.url}/v1/embeddings", json={"input": f"w{i}"}, headers=ACME, timeout=30)
                assert response.status_code == 200, response.text
            totals = {request_counts(client.get("/metrics").text) for _ in range(6)}
        assert totals == {40.0}  # whichever worker answers /metrics counts both workers' requests


def test_with_a_metrics_port_the_supervisor_serves_the_sum(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path, tmp_path: Path
) -> None:
    settings = tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store)
    port = free_port()
    with GatewayProcess(settings, tmp_path, workers=2, TIPS_METRICS_PORT=str(port)) as gateway:
        for i in range(10):
            response = httpx.post(f"{gateway.url}/v1/embeddings", json={"input": f"m{i}"}, headers=ACME, timeout=30)
            assert response.status_code == 200
        assert httpx.get(f"{gateway.url}/metrics").status_code == 404
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert request_counts(text) == 10
        assert metric_value(text, "tipsv2_inflight_requests") == 0
        assert metric_value(text, "tipsv2_triton_up") == 1
