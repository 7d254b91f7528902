"""`tipsv2 model build-local`: a seeded tiny model in the official layout, with a locally trained tokenizer."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("model", help="build models")
    sub = parser.add_subparsers(dest="model_command", required=True)
    build = sub.add_parser("build-local", help="write a seeded random tiny model + tokenizer (official layout)")
    build.add_argument("--out", type=Path, required=True, help="directory for the .npz files and tokenizer.model")
    build.add_argument("--variant", default="tipsv2-tiny")
    build.add_argument("--seed", type=int, default=0)
    build.set_defaults(func=_build_local)


def _build_local(args: argparse.Namespace) -> int:
    from training.export.pipeline import build_local_weights

    out = build_local_weights(args.out, args.variant, args.seed)
    print(f"wrote {args.variant} weights and tokenizer to {out}")
    return 0
