"""`tipsv2 gateway`: run the HTTP gateway (settings from TIPS_* environment variables); see
`service.gateway.workers`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("gateway", help="run the HTTP gateway (several worker processes, one per core)")
    parser.add_argument("--host", default=None, help="default: TIPS_HOST (0.0.0.0)")
    parser.add_argument("--port", type=int, default=None, help="default: TIPS_PORT (8080)")
    parser.add_argument("--workers", type=int, default=None, help="default: TIPS_WORKERS (0 = one per CPU)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from service.gateway.workers import main

    argv = []
    for flag, value in (("--host", args.host), ("--port", args.port), ("--workers", args.workers)):
        if value is not None:
            argv += [flag, str(value)]
    return main(argv)
