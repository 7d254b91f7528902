"""A local server dies with the process that started it, even when that process is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from service.tools.local.redis_server import _pong, free_port


def test_redis_server_dies_when_its_launcher_is_killed(tmp_path: Path) -> None:
    port = free_port()
    launcher = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from service.tools.local.redis_server import RedisServer\n"
        f"server = RedisServer({port}, Path({str(tmp_path)!r})).start()\n"
        "print(server.process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())  # type: ignore[union-attr]
    assert _pong(port)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.05)
    assert not _alive(child_pid), "redis-server outlived its killed launcher"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie (reaped by init later) is dead too
        return stat.read().split()[2] != "Z"
