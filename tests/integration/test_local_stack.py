"""The README's serve command: `make serve` (`tipsv2 local up`) builds the model itself, on the ports it is given,
says what it does in a few lines, and answers /v1/embeddings."""

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

from service.tools.local.redis_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


ROOT = Path(__file__).resolve().parents[2]
CHATTER = ("INFO onnx", "Skipping constant folding", "initializer_deduplication", "torchvision is not installed")


def test_make_serve_serves_embeddings_on_its_ports_quietly_and_stops_cleanly(tmp_path: Path) -> None:
    """Defect 10: ports are make variables, and start-up prints one line per step (it printed ~160 lines)."""
    port = free_port()
    ports = " ".join(str(free_port()) for _ in range(3))
    command = [
        "make",
        "-s",
        "-C",
        str(ROOT),
        "serve",
        f"VENV={Path(sys.executable).parents[1]}",
        f"LOCAL_DIR={tmp_path / 'local'}",
        f"PORT={port}",
        f"TRITON_PORTS={ports}",
        f"REDIS_PORT={free_port()}",
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
        startup = (tmp_path / "stack.log").read_text().split("try: curl")[0]
        assert f"gateway on http://127.0.0.1:{port}" in startup and f"on :{ports.split()[1]}" in startup, startup
        assert len(startup.splitlines()) <= 6 and not any(noise in startup for noise in CHATTER), startup
    finally:
        process.send_signal(signal.SIGTERM)  # GNU make passes SIGTERM on to the stack and waits for it
        process.wait(60)
        log.close()
    assert process.returncode in (0, -signal.SIGTERM), (tmp_path / "stack.log").read_text()[-3000:]
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert not leftovers, "tritonserver or redis-server outlived the stack"
