"""`tipsv2 local up`: the whole stack on this machine (bundled tritonserver, redis-server, gateway)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("local", help="run the local stack")
    sub = parser.add_subparsers(dest="local_command", required=True)
    up = sub.add_parser("up", help="build the tiny model if needed; run Redis, Triton and the gateway until Ctrl-C")
    up.add_argument("--dir", type=Path, default=Path("build/local"))
    up.add_argument("--variant", default="tipsv2-tiny")
    up.add_argument("--port", type=int, default=8080, help="gateway port")
    up.add_argument(
        "--triton-ports", type=int, nargs=3, default=(8000, 8001, 8002), metavar=("HTTP", "GRPC", "METRICS")
    )
    up.add_argument("--redis-port", type=int, default=6379)
    up.add_argument("--prepare-only", action="store_true", help="build and export, then exit")
    up.add_argument(
        "--adapter-store",
        default=None,
        help="adapter store path as Triton will see it (default: DIR/adapters); for a container deployment, with "
        "--prepare-only: its mount point, /var/lib/tipsv2/adapters in compose and the chart",
    )
    up.set_defaults(func=_up)


def _up(args: argparse.Namespace) -> int:
    from service.tools.local.stack import LocalStack

    http, grpc, metrics = args.triton_ports
    stack = LocalStack(args.dir, args.variant, args.port, http, grpc, metrics, args.redis_port, args.adapter_store)
    if args.prepare_only:
        stack.prepare()
        return 0
    stack.run()
    return 0
