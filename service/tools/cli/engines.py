"""`tipsv2 engines build`: TensorRT plans for a generated `gpu` repository, built where TensorRT is (a GPU node)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("engines", help="build TensorRT engines for a gpu-flavour repository")
    sub = parser.add_subparsers(dest="engines_command", required=True)
    build = sub.add_parser(
        "build",
        help="compile each trunk's model.onnx into model.plan (inside NVIDIA's TensorRT container, on the GPU model "
        "that will serve it)",
    )
    build.add_argument(
        "--repository", type=Path, required=True, help="a repository written by `tipsv2 export --flavour gpu`"
    )
    build.add_argument("--precision", choices=("fp16", "bf16", "fp32"), default="fp16")
    build.add_argument("--workspace-gib", type=float, default=8.0, help="TensorRT builder workspace")
    build.add_argument("--opt-batch", type=int, default=None, help="batch size to tune for (default: the max)")
    build.add_argument("--no-verify", action="store_true", help="skip the engine vs onnxruntime comparison")
    build.add_argument("--dry-run", action="store_true", help="print the engines and profiles; build nothing")
    build.set_defaults(func=_build)


def _build(args: argparse.Namespace) -> int:
    from service.triton.engines import build_engine, engine_specs, import_tensorrt, verify_engine

    specs = engine_specs(args.repository, args.precision, args.opt_batch)
    if args.dry_run:
        for spec in specs:
            profile = {name: asdict(shapes) for name, shapes in spec.profile.items()}
            print(json.dumps({"model": spec.model, "onnx": str(spec.onnx), "plan": str(spec.plan), "profile": profile}))
        return 0
    trt = import_tensorrt()  # fails here, before any work, where TensorRT is absent
    for spec in specs:
        plan = build_engine(spec, args.workspace_gib, trt)
        print(f"built {plan} ({plan.stat().st_size / 2**20:.1f} MiB, {spec.precision})")
        if not args.no_verify:
            worst = verify_engine(spec)
            print(f"verified {spec.model} against onnxruntime: worst row cosine {worst}")
    return 0
