"""The README's serve command: `tipsv2 local up` builds the model itself and answers /v1/embeddings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from service.local.redis_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_local_up_serves_embeddings_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    ports = [str(free_port()) for _ in range(3)]
    command = [
        sys.executable,
        "-m",
        "service.cli.main",
        "local",
        "up",
        "--dir",
        str(tmp_path / "local"),
        "--port",
        str(port),
        "--triton-ports",
        *ports,
        "--redis-port",
        str(free_port()),
    ]
    log = (tmp_path / "stack.log").open("w")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TIPS_DEV_API_KEY": "stack-test-key"}
    )
    try:
        deadline = time.monotonic() + 240
        body = None
        while time.monotonic() < deadline and process.poll() is None:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/embeddings",
                data=json.dumps({"input": "a red circle"}).encode(),
                headers={"Authorization": "Bearer stack-test-key", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    body = json.load(response)
                    break
            except OSError:
                time.sleep(1)
        assert body is not None, (tmp_path / "stack.log").read_text()[-3000:]
        assert len(body["data"][0]["embedding"]) == 64 and body["model"] == "tipsv2-tiny"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        log.close()
    assert process.returncode in (0, 128 + signal.SIGTERM), (tmp_path / "stack.log").read_text()[-3000:]
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert not leftovers, "tritonserver or redis-server outlived the stack"
