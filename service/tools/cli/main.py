"""`tipsv2`: one entry point for building, exporting, serving and operating TIPSv2 models."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Modules defining `register(subparsers)`; each adds its subcommand(s) with `set_defaults(func=...)`.
COMMAND_MODULES = (
    "service.tools.cli.model",
    "service.tools.cli.export",
    "service.tools.cli.triton",
    "service.tools.cli.engines",
    "service.tools.cli.gateway",
    "service.tools.cli.local",
    "service.tools.cli.keys",
    "service.tools.cli.jobs",
    "service.tools.cli.weights",
    "service.tools.cli.encode",
    "service.tools.cli.dense",
    "service.tools.cli.data",
    "service.tools.cli.train",
    "service.tools.cli.evaluate",
    "service.tools.cli.adapt",
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
