"""`tipsv2 data synth`: write WebDataset-style shards of the procedural world (images, captions, exact masks)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("data", help="training data")
    sub = parser.add_subparsers(dest="data_command", required=True)
    synth = sub.add_parser("synth", help="generate image-text shards with per-pixel class masks")
    synth.add_argument("--out", type=Path, required=True, help="directory for the .tar shards and manifest.json")
    synth.add_argument("--num-samples", type=int, required=True)
    synth.add_argument("--samples-per-shard", type=int, default=1000)
    synth.add_argument("--image-size", type=int, default=112, help="square image side in pixels")
    synth.add_argument("--seed", type=int, default=0, help="with --split, determines every sample")
    synth.add_argument("--split", default="train", help="split name, also part of each sample's seed")
    synth.add_argument("--max-objects", type=int, default=3, help="shapes per image: 1 to this many")
    synth.add_argument("--workers", type=int, default=1, help="processes writing shards in parallel")
    synth.add_argument(
        "--world",
        choices=("world", "survey"),
        default="world",
        help="world: the generated world; survey: its domain-shift task for adapters (false colour, new cover names)",
    )
    synth.set_defaults(func=_synth)


def _synth(args: argparse.Namespace) -> int:
    from training.data.domain_shift import generate_survey_dataset
    from training.data.synth import generate_dataset

    if args.max_objects < 1:
        raise ValueError("--max-objects must be at least 1")
    generate = generate_survey_dataset if args.world == "survey" else generate_dataset  # same arguments and format
    manifest = generate(
        args.out,
        args.num_samples,
        args.samples_per_shard,
        args.image_size,
        args.seed,
        args.split,
        args.max_objects,
        args.workers,
    )
    print(f"wrote {manifest['num_samples']} samples in {len(manifest['shards'])} shard(s) to {args.out}")
    return 0
