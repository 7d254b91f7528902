"""`tipsv2`: one entry point for building, exporting, serving and operating TIPSv2 models."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Modules defining `register(subparsers)`; each adds its subcommand(s) with `set_defaults(func=...)`.
COMMAND_MODULES = (
    "service.cli.model",
    "service.cli.export",
    "service.cli.triton",
    "service.cli.engines",
    "service.cli.gateway",
    "service.cli.local",
    "service.cli.keys",
    "service.cli.jobs",
    "service.cli.weights",
    "service.cli.encode",
    "service.cli.dense",
    "service.cli.data",
    "service.cli.train",
    "service.cli.evaluate",
    "service.cli.adapt",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tipsv2", description=__doc__)
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError, RuntimeError, KeyError) as exc:
        print(f"tipsv2 {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
