"""`tipsv2 train`: the TIPSv2 recipe from a config (defaults + override files + key=value), one process or torchrun.

    tipsv2 train --config training/configs/tiny_cpu.yaml run.dir=runs/a data.train=data/train
    torchrun --nproc-per-node 8 -m service.tools.cli.main train --config my.yaml run.dir=runs/a data.train=data/train

Re-running with the same `run.dir` resumes from its newest checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("train", help="train TIPSv2 (contrastive + DINO + iBOT++ + distillation)")
    parser.add_argument(
        "--config", type=Path, action="append", default=[], help="override file(s) on top of the defaults"
    )
    parser.add_argument("--print-config", action="store_true", help="print the merged config and exit")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. optim.lr=3e-4 run.dir=runs/a")
    parser.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    import yaml

    from training.train.config import TrainConfig, load_config
    from training.train.loop import train

    raw = load_config(args.config, args.overrides)
    if args.print_config:
        print(yaml.safe_dump(raw, sort_keys=False), end="")
        return 0
    final = train(TrainConfig.from_dict(raw))
    print(f"training finished; final checkpoint (official layout): {final}")
    return 0
