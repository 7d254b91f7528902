"""`tipsv2 adapt`: train an AdaLink adapter for a task on frozen base weights and write the adapter file.

    tipsv2 adapt --base WEIGHTS_DIR --task TASK.yaml --out ADAPTER.safetensors [--set optim.steps=100 ...]

The base directory holds the official-layout `.npz` files and the model's `tokenizer.model` (a `tipsv2 train`
checkpoint folder, `tipsv2 model build-local`'s weights, or a downloaded release). The task file is described in
`training/adalink/tasks.py` (examples in `training/configs/tasks/`). The adapter is validated exactly as the server
validates uploads before it is written; a JSON report (metadata, base checksum, training time, eval metrics when
the task has eval data) is printed and, with `--report`, written to a file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("adapt", help="train an AdaLink adapter for a task (base weights stay frozen)")
    parser.add_argument("--base", type=Path, required=True, help="base weights directory (.npz files + tokenizer)")
    parser.add_argument("--task", type=Path, required=True, help="task YAML (training/configs/tasks/*.yaml)")
    parser.add_argument("--out", type=Path, required=True, help="adapter file to write (.safetensors)")
    parser.add_argument("--variant", help="model variant (default: inferred from the base's file names)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="task override, repeatable"
    )
    parser.add_argument("--report", type=Path, help="also write the JSON report here")
    parser.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.set_defaults(func=_adapt)


def _adapt(args: argparse.Namespace) -> int:
    if args.out.suffix != ".safetensors":
        raise ValueError(f"--out {args.out} must end in .safetensors (the adapter file format)")
    if args.threads < 0:
        raise ValueError("--threads must be non-negative")
    if not args.task.is_file():
        raise FileNotFoundError(f"task file {args.task} does not exist")
    import torch

    from training.adalink.adapt import adapt

    if args.threads:
        torch.set_num_threads(args.threads)
    result = adapt(args.base, args.task, args.out, args.overrides, args.variant, args.device)
    text = json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n")
    print(text)
    return 0
