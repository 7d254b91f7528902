"""`tipsv2 eval`: zero-shot segmentation mIoU, classification accuracy and retrieval recall@1 on shards."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("eval", help="zero-shot evaluation of official-layout weights on shards")
    parser.add_argument("--weights", type=Path, required=True, help="directory with the .npz files and tokenizer")
    parser.add_argument("--variant", required=True, help="tiny, b14, ... or tipsv2-tiny, tipsv2-b14, ...")
    parser.add_argument("--data", type=Path, action="append", required=True, help="shard directory (repeatable)")
    parser.add_argument("--resolution", type=int, help="model input side (default: the dataset's image size)")
    parser.add_argument("--mode", choices=("whole", "slide"), default="whole", help="segmentation protocol")
    parser.add_argument(
        "--caption", choices=("alt", "keywords", "sentence", "dense"), default="sentence", help="retrieval texts"
    )
    parser.add_argument("--limit", type=int, help="evaluate the first N samples only")
    parser.add_argument("--output", type=Path, help="also write the metrics as JSON here")
    parser.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    from training.eval.zeroshot_eval import EvalOptions, evaluate
    from training.tipsv2.checkpoint import load_pretrained
    from training.tipsv2.pretrained import TOKENIZER_FILE
    from training.tipsv2.tokenizer import Tokenizer

    tokenizer_file = args.weights / TOKENIZER_FILE
    if not tokenizer_file.is_file():
        raise FileNotFoundError(f"{tokenizer_file} not found (evaluation needs the model's tokenizer)")
    if args.limit is not None and args.limit <= 0:
        raise ValueError("--limit must be positive")
    model = load_pretrained(args.weights, args.variant)
    tokenizer = Tokenizer(tokenizer_file, model.cfg.text_cfg.max_len)
    options = EvalOptions(resolution=args.resolution, mode=args.mode, caption=args.caption, limit=args.limit)
    result = evaluate(model, tokenizer, args.data, options).to_dict()
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    print(text)
    return 0
