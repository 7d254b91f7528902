"""Processes the reliability tests own: a gateway (uvicorn, configured only by TIPS_* variables) and a tritonserver
that the tests pause, kill and restart on the same ports, plus memory readings of either from /proc.

Nothing here touches the session's servers: every process is started by the test that signals it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service.gateway.core.config import Settings
from service.tools.local.redis_server import RedisServer, free_port
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import settings_env


def rss_kib(pid: int) -> int:
    """Resident set size of one process (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def group_rss_kib(pgid: int) -> int:
    """Summed RSS of a process group: tritonserver and its Python-backend stubs share one (it starts a session)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            # Field 5 of /proc/PID/stat is the process group; the command name (field 2) may hold spaces.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += rss_kib(int(entry.name))
    return total


# Run before exec'ing the gateway: simulates a full disk, writes beyond N bytes in any regular file fail (EFBIG).
# SIGXFSZ is ignored, else the kernel kills the writer instead of failing the write; both survive the exec.
_LIMITED_EXEC = (
    "import os, resource, signal, sys; n = int(sys.argv[1]); signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); os.execv(sys.argv[2], sys.argv[2:])"
)


class GatewayServer:
    """`uvicorn service.gateway.main:app` in its own process, restartable on the same port, signalled by the test."""

    def __init__(
        self,
        settings: Settings,
        workdir: Path,
        *,
        port: int | None = None,
        file_size_limit: int | None = None,
        keep_log: bool = True,
        uvicorn_args: tuple[str, ...] = (),
        **env: str,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **settings_env(settings), "PYTHONDONTWRITEBYTECODE": "1", **env}
        self.log = workdir / f"gateway-{self.port}.log"
        self.file_size_limit = file_size_limit
        self.uvicorn_args = uvicorn_args
        self.keep_log = keep_log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "gateway not running"
        return self.process.pid

    def start(self, timeout: float = 60.0, ready: bool = True) -> GatewayServer:
        """Starts uvicorn and waits until /readyz (or /healthz with `ready=False`) answers 200."""
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
        command += self.uvicorn_args
        if self.file_size_limit is not None:
            command = [sys.executable, "-c", _LIMITED_EXEC, str(self.file_size_limit), *command]
        with open(self.log, "ab") if self.keep_log else open(os.devnull, "wb") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        probe = "/readyz" if ready else "/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gateway exited: {self.log_text()[-3000:]}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}{probe}", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"gateway not ready in {timeout:.0f} s: {self.log_text()[-3000:]}")

    def terminate(self) -> None:
        """SIGTERM: uvicorn stops accepting, lets in-flight requests finish, then runs the app's shutdown."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        self.process = None
        return code

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a node or a container dies."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            self.terminate()
            try:
                self.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ControlledTriton:
    """A tritonserver of the tests' own that they stall (SIGSTOP), kill (SIGKILL) and restart on the same ports."""

    def __init__(self, repository: Path, workdir: Path) -> None:
        self.server = TritonServer(repository, workdir, free_port(), free_port(), free_port())
        self.paused = False

    @property
    def grpc_port(self) -> int:
        return self.server.grpc_port

    @property
    def pgid(self) -> int:
        assert self.server.process is not None, "tritonserver not running"
        return self.server.process.pid  # started with a new session: its pid is the group id

    def start(self) -> ControlledTriton:
        self.server.start(timeout=120)
        return self

    def pause(self) -> None:
        """Stops the whole process group: connections stay open and requests wait, as with a wedged server."""
        os.killpg(self.pgid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.paused and self.server.process is not None:
            os.killpg(self.pgid, signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        self.resume()
        self.server.kill()

    def restart(self) -> float:
        """Starts a new tritonserver on the same ports; returns how long it took to become ready."""
        started = time.monotonic()
        self.server = TritonServer(
            self.server.repository,
            self.server.workdir,
            self.server.http_port,
            self.server.grpc_port,
            self.server.metrics_port,
        ).start(timeout=120)
        return time.monotonic() - started

    def healthy(self) -> ControlledTriton:
        """Undoes whatever a test left behind: resumed, and running."""
        self.resume()
        if self.server.process is None or self.server.process.poll() is not None or not self.server.is_ready():
            self.server.stop()
            self.restart()
        return self

    def stop(self) -> None:
        self.resume()
        self.server.stop()


def restart_redis(server: RedisServer) -> None:
    """Starts a new redis-server on `server`'s port and directory (its append-only file), in place."""
    server.process = RedisServer(server.port, server.workdir, server.appendonly).start().process
