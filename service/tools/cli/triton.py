"""`tipsv2 triton serve`: run the bundled tritonserver on a repository until interrupted."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("triton", help="run the bundled tritonserver")
    sub = parser.add_subparsers(dest="triton_command", required=True)
    serve = sub.add_parser("serve", help="start tritonserver, wait until ready, stop cleanly on Ctrl-C/SIGTERM")
    serve.add_argument("--repository", type=Path, required=True)
    serve.add_argument("--workdir", type=Path, default=Path("build/triton"))
    serve.add_argument("--http-port", type=int, default=8000)
    serve.add_argument("--grpc-port", type=int, default=8001)
    serve.add_argument("--metrics-port", type=int, default=8002)
    serve.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from service.tools.local.tritonserver import TritonServer

    server = TritonServer(
        args.repository.resolve(), args.workdir.resolve(), args.http_port, args.grpc_port, args.metrics_port
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start(args.timeout)
    print(f"tritonserver ready: http :{args.http_port}, grpc :{args.grpc_port}, metrics :{args.metrics_port}")
    try:
        while not stop.wait(0.5):
            if server.process is None or server.process.poll() is not None:
                print("tritonserver exited")
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
