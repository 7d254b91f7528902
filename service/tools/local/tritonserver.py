"""Starts and stops the real `tritonserver` bundled in the `nvidia-pytriton` wheel, on chosen ports.

What the bundled binary needs (checked by hand, see docs): a backend directory whose `python/` holds *symlinks* to
the wheel's Python backend and the stub for this interpreter's version; `LD_LIBRARY_PATH` starting with this
interpreter's LIBDIR (else the stub loads the system libpython); this environment's `bin/` first on `PATH` (so model
code imports from this environment). Without a backend directory it hangs in "loading" instead of failing, so every
start waits for readiness with a timeout.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from service.tools.local.process import die_with_parent
from service.triton.repository import MANIFEST

# How much a Python-backend stub's shared memory grows by when a request outgrows it (the backend's default: 1 MiB,
# so a 100 MB batch of patch tokens took a hundred growths).
SHM_GROWTH_BYTES = 16 << 20


class TritonNotAvailable(RuntimeError):
    """The bundled tritonserver is not installed (the `triton-local` extra)."""


class TritonStartError(RuntimeError):
    """tritonserver did not become ready in time or exited."""


def pytriton_root() -> Path:
    # Located, not imported: importing pytriton pulls in its client's dependencies (gevent, ...), which a
    # `pip install --no-deps` of the wheel (how it is carried to the GPU machine) does not have; only the binary,
    # the backend and the stubs inside the wheel are needed here.
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonNotAvailable("tritonserver is not installed: pip install 'tipsv2-serve[triton-local]'")
    root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    if not (root / "bin" / "tritonserver").is_file():
        raise TritonNotAvailable(f"no tritonserver binary under {root}")
    return root


def prepare_backend_dir(workdir: Path) -> Path:
    """Creates `workdir/backends/python` with symlinks to the bundled Python backend and this interpreter's stub."""
    root = pytriton_root()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise TritonNotAvailable(f"the bundled Python backend has no stub for Python {version}")
    python_dir = workdir / "backends" / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    links = {
        "libtriton_python.so": root / "backends" / "python" / "libtriton_python.so",
        "triton_python_backend_utils.py": root / "backends" / "python" / "triton_python_backend_utils.py",
        "triton_python_backend_stub": stub,
    }
    for name, target in links.items():
        link = python_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return workdir / "backends"


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    root = pytriton_root()
    libs = [str(sysconfig.get_config_var("LIBDIR")), str(root.parent.parent / "nvidia_pytriton.libs")]
    env["LD_LIBRARY_PATH"] = ":".join([*libs, env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    # Every model instance is its own process and the embedding stages' matmuls are small: numpy's OpenBLAS, left
    # to start a thread per core in each of them, oversubscribes the cores (measured on 2 cores: 1.5-1.7x the Triton
    # CPU per image, docs/benchmarks.md). Threads the operator asked for are kept.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def manifest_shm_bytes(repository: Path) -> int:
    """The stub shared memory a generated repository asks for (0 when it says nothing)."""
    try:
        manifest = json.loads((Path(repository) / MANIFEST).read_text())
    except (OSError, ValueError):
        return 0
    return int(manifest.get("server", {}).get("python_shm_default_bytes", 0))


@dataclass
class TritonServer:
    repository: Path
    workdir: Path
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    model_control_mode: str = "none"
    extra_args: list[str] = field(default_factory=list)
    log_verbose: int = 0
    # The directory tritonserver runs in. The Python backend's stub puts it first on sys.path (it ignores
    # PYTHONPATH): on a machine with numpy 2, a folder holding numpy 1 here is what lets the stub read BYTES
    # inputs (see docs/benchmarks.md, "numpy 2 and the bundled Python backend").
    cwd: Path | None = None
    # Shared memory of each Python-backend stub; None: what the repository's manifest asks for (sized for a full
    # batch by the generator), or the backend's default for a repository without one.
    python_shm_bytes: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "tritonserver.log"

    @property
    def shm_prefix(self) -> str:
        return f"tipsv2_{os.getpid()}_{self.grpc_port}_"

    def command(self) -> list[str]:
        root = pytriton_root()
        return [
            str(root / "bin" / "tritonserver"),
            f"--model-repository={self.repository}",
            f"--backend-directory={prepare_backend_dir(self.workdir)}",
            f"--cache-directory={root / 'caches'}",
            f"--http-port={self.http_port}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            "--http-address=127.0.0.1",
            "--grpc-address=127.0.0.1",
            f"--model-control-mode={self.model_control_mode}",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            *self._shm_sizes(),
            f"--log-verbose={self.log_verbose}",
            "--exit-on-error=true",
            *self.extra_args,
        ]

    def _shm_sizes(self) -> list[str]:
        size = self.python_shm_bytes or manifest_shm_bytes(self.repository)
        if not size:
            return []
        return [
            f"--backend-config=python,shm-default-byte-size={size}",
            f"--backend-config=python,shm-growth-byte-size={SHM_GROWTH_BYTES}",
        ]

    def start(self, timeout: float = 120.0) -> TritonServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(),
            env=server_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.cwd,
            preexec_fn=die_with_parent,  # noqa: PLW1509  (only prctl, safe before exec)
        )
        log.close()
        self.wait_ready(timeout)
        return self

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/v2/health/ready", timeout=1) as r:
                return int(r.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def models_ready(self) -> tuple[int, int]:
        """(models READY, models in the repository) from Triton's repository index; (0, 0) until it answers."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/v2/repository/index", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                index = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return 0, 0
        return sum(m.get("state") == "READY" for m in index), len(index)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise TritonStartError(f"tritonserver exited with {self.process.returncode}; {self._log_tail()}")
            if self.is_ready():
                return
            time.sleep(0.2)
        self.stop()
        raise TritonStartError(f"tritonserver not ready after {timeout:.0f} s; {self._log_tail()}")

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "no log"
        return "log tail:\n" + "\n".join(text)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (Triton drains and unloads), then SIGKILL after `timeout`; removes leftover shared memory."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for leftover in glob.glob(f"/dev/shm/{self.shm_prefix}*"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)

    def kill(self) -> None:
        """SIGKILL with no drain: for fault-injection tests."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.stop()

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
