"""The gateway's processes: `python -m service.gateway.workers` (or `tipsv2 gateway`), settings from TIPS_* variables.

One Python process tops out near one core, so a pod runs several: `TIPS_WORKERS` worker processes (0 = one per CPU
this pod may use: its CPU affinity, capped by its cgroup CPU limit), each an uvicorn server (uvloop, httptools, no
access log) with its own listening socket on the same port (`SO_REUSEPORT`: the kernel spreads connections evenly
over the workers). When the pod's CPU set has one core per worker (a machine or VM run this way, or a Kubernetes
Guaranteed pod under the static CPU manager, whose CPU set is its exclusive cores), each worker is pinned to its own
core, so two workers never fight over one core's cache and run queue; in a shared CPU set (a pod with a CPU limit on
a larger node) pinning would stack every pod's workers on the same cores, so the kernel schedules them. A worker
that dies is replaced; SIGTERM or SIGINT to this process stops every worker gracefully (uvicorn drains in-flight
requests for up to `--graceful-s`).

Metrics across processes: with more than one worker, the workers write their samples to files in one directory
(prometheus_client's multiprocess mode; `PROMETHEUS_MULTIPROC_DIR`, a fresh directory unless set) and /metrics sums them
over the workers (`service.gateway.core.metrics`): counters and histograms add up, `tipsv2_inflight_requests` is the sum
over live workers, the up-gauges are the most recent value written. With `TIPS_METRICS_PORT` this process serves that
port itself, so the workers do not compete for it.

Each worker also cross-request-batches its own requests (`service.gateway.inference.batching`): more workers than the
load needs make smaller Triton calls. Two per pod on 2 cores, one per core on larger pods, is what docs/serving.md
measured and recommends.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

log = logging.getLogger("service.gateway.workers")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class ServerOptions:
    host: str = "0.0.0.0"
    port: int = 8080
    log_level: str = "info"
    graceful_s: int = 30
    access_log: bool = False


def available_cpus() -> int:
    """CPUs this process may use: its affinity set, capped by a cgroup v2 CPU limit (`cpu.max`) when there is one."""
    cpus = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    return max(1, cpus)


def worker_count(requested: int) -> int:
    return requested if requested > 0 else available_cpus()


def core_plan(workers: int, cores: set[int] | None = None) -> list[int | None]:
    """The core each worker is pinned to: one each when the CPU set has exactly one core per worker, else None."""
    cores = os.sched_getaffinity(0) if cores is None else cores
    if workers != len(cores):
        return [None] * workers
    return [*sorted(cores)]


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_worker(index: int, core: int | None, options: ServerOptions) -> None:
    """One worker: pinned to `core`, an uvicorn server on its own SO_REUSEPORT socket."""
    import uvicorn

    if core is not None:
        os.sched_setaffinity(0, {core})
    config = uvicorn.Config(
        "service.gateway.main:app",
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level=options.log_level,
        access_log=options.access_log,
        timeout_graceful_shutdown=options.graceful_s,
        server_header=False,
    )
    server = uvicorn.Server(config)
    sock = listening_socket(options.host, options.port)
    log.info("worker %d (pid %d) on core %s", index, os.getpid(), "any" if core is None else core)
    server.run(sockets=[sock])


class Supervisor:
    """Starts the workers, replaces any that dies, and stops them all on SIGTERM/SIGINT."""

    def __init__(self, workers: int, options: ServerOptions) -> None:
        self.options = options
        self.cores = core_plan(workers)
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[BaseProcess | None] = [None] * workers
        self.stopping = False

    def start(self, index: int) -> None:
        process = self.context.Process(
            target=run_worker, args=(index, self.cores[index], self.options), name=f"gateway-worker-{index}"
        )
        process.start()
        self.processes[index] = process

    def run(self) -> int:
        for index in range(len(self.processes)):
            self.start(index)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        while not self.stopping:
            for index, process in enumerate(self.processes):
                if process is not None and not process.is_alive() and not self.stopping:
                    log.warning(
                        "worker %d (pid %s) exited with %s; starting another", index, process.pid, process.exitcode
                    )
                    _mark_dead(process.pid)
                    self.start(index)
            time.sleep(0.5)
        return self._join()

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _join(self) -> int:
        for process in self.processes:
            if process is not None and process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.options.graceful_s + 5
        for process in self.processes:
            if process is not None:
                process.join(max(0.1, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join()
        return 0


def _mark_dead(pid: int | None) -> None:
    if pid is not None and os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def serve(workers: int, options: ServerOptions) -> int:
    """Runs the gateway in `workers` processes (1: in this process, as plain uvicorn would)."""
    if workers == 1:
        run_worker(0, None, options)
        return 0
    if options.port == 0:
        raise ValueError("several workers share one port: give a port number, not 0")
    own_dir = None
    if not os.environ.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="tipsv2-metrics-")
        os.environ[MULTIPROC_ENV] = own_dir  # before any metric exists here or in a worker
    metrics_server = None
    try:
        from service.gateway.core.config import get_settings
        from service.gateway.core.metrics import serve_multiprocess_metrics

        settings = get_settings()
        if settings.metrics_port:
            metrics_server = serve_multiprocess_metrics(settings.metrics_port, settings.metrics_host)
        log.info("%d gateway workers on %s:%d", workers, options.host, options.port)
        return Supervisor(workers, options).run()
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.gateway.workers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=None, help="default: TIPS_HOST (0.0.0.0)")
    parser.add_argument("--port", type=int, default=None, help="default: TIPS_PORT (8080)")
    parser.add_argument("--workers", type=int, default=None, help="default: TIPS_WORKERS (0 = one per CPU)")
    parser.add_argument("--graceful-s", type=int, default=30, help="seconds to drain in-flight requests on SIGTERM")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action="store_true", help="log every request (off: it costs CPU per request)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if None in (args.workers, args.host, args.port):
        from service.gateway.core.config import get_settings

        settings = get_settings()
        args.workers = settings.workers if args.workers is None else args.workers
        args.host = settings.host if args.host is None else args.host
        args.port = settings.port if args.port is None else args.port
    options = ServerOptions(args.host, args.port, args.log_level, args.graceful_s, args.access_log)
    return serve(worker_count(args.workers), options)


if __name__ == "__main__":
    sys.exit(main())
