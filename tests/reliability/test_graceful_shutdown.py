"""SIGTERM to a gateway process (what Kubernetes sends on a rollout or scale-in) drains it: the requests it had
accepted all complete with 200, new connections are refused at once, and the process exits by itself."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from service.tools.local.redis_server import RedisServer
from tests.integration.gateway_support import ACME, metric_value, tenant_settings
from tests.reliability.processes import ControlledTriton, GatewayServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]
IN_FLIGHT = 6


def wait_until_refused(port: int, timeout: float = 5.0) -> None:
    """uvicorn closes its listening socket when the signal is handled; a TCP connect tells when that happened."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return
        assert time.monotonic() < deadline, "the gateway still accepts connections after SIGTERM"
        time.sleep(0.05)


def test_sigterm_drains_accepted_requests_and_refuses_new_ones(
    triton_ctl: ControlledTriton, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path, tmp_path: Path
) -> None:
    settings = tenant_settings(triton_ctl.server, redis_server.url, tokenizer_path, adapter_store)
    gateway = GatewayServer(settings, tmp_path).start()
    results: list[int | str] = []

    def request(index: int) -> None:
        try:
            body = {"input": f"accepted before the signal {index} {time.monotonic()}"}
            response = httpx.post(f"{gateway.url}/v1/embeddings", json=body, headers=ACME, timeout=60)
            results.append(response.status_code)
        except httpx.HTTPError as exc:
            results.append(repr(exc))

    try:
        # Triton stalled: the requests are accepted and wait inside the gateway, as slow requests would.
        triton_ctl.pause()
        threads = [threading.Thread(target=request, args=(i,)) for i in range(IN_FLIGHT)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while metric_value(httpx.get(f"{gateway.url}/metrics").text, "tipsv2_inflight_requests") < IN_FLIGHT:
            assert time.monotonic() < deadline, "requests never reached the gateway"
            time.sleep(0.05)
        gateway.terminate()
        wait_until_refused(gateway.port)
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                httpx.post(f"{gateway.url}/v1/embeddings", json={"input": "after the signal"}, headers=ACME, timeout=5)
            time.sleep(0.1)
        assert gateway.process is not None and gateway.process.poll() is None, "exited before draining"
        triton_ctl.resume()
        for thread in threads:
            thread.join(30)
        code = gateway.wait(30)
    finally:
        triton_ctl.resume()
        gateway.kill()
    assert results == [200] * IN_FLIGHT, results
    assert code in (0, -15), code  # uvicorn re-raises SIGTERM once it has shut down cleanly
    log = gateway.log_text()
    assert "Waiting for connections to close" in log and "Application shutdown complete" in log
