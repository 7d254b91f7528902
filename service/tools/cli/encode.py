"""`tipsv2 encode`: raw TIPSv2 outputs for image files and texts, written to one `.npz`.

Contract (README "Command line"): DIR holds the official vision and text `.npz` files and `tokenizer.model`; OUT
holds float32 `image_cls` (N, D), `image_cls2` (N, D), `image_patch_tokens` (N, R/14, R/14, D) and
`text_embeddings` (M, D), the towers' raw outputs (not L2-normalised), in input order.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("encode", help="encode image files and texts with official-layout weights")
    parser.add_argument("--weights", type=Path, required=True, help="directory with the .npz files and tokenizer")
    parser.add_argument("--variant", required=True, help="b14, l14, so14, g14, tiny, or tipsv2-b14, ...")
    parser.add_argument("--image", nargs="+", action="extend", default=[], type=Path, help="image file(s)")
    parser.add_argument("--text", nargs="+", action="extend", default=[], help="text(s)")
    parser.add_argument("--resolution", type=int, help="square input size, a multiple of 14 (default: native)")
    parser.add_argument(
        "--no-jpeg-draft",
        dest="jpeg_draft",
        action="store_false",
        help="decode large JPEGs at full size (the gateway's TIPS_LIMITS__JPEG_DRAFT=false)",
    )
    parser.add_argument("--output", type=Path, required=True, help="the .npz to write")
    parser.set_defaults(func=_encode)


def _encode(args: argparse.Namespace) -> int:
    """Checks every input before loading the (possibly multi-GB) weights, then encodes and writes OUT."""
    from training.tipsv2.configs import get_model_config
    from training.tipsv2.encode import load_images
    from training.tipsv2.preprocess import check_resolution
    from training.tipsv2.pretrained import TOKENIZER_FILE

    if not args.image and not args.text:
        raise ValueError("nothing to encode: give --image and/or --text")
    if not args.weights.is_dir():
        raise FileNotFoundError(f"weights directory {args.weights} does not exist")
    cfg = get_model_config(args.variant)
    resolution = check_resolution(args.resolution or cfg.vision_cfg.img_size, cfg.vision_cfg.patch_size)
    tokenizer_file = args.weights / TOKENIZER_FILE
    if args.text and not tokenizer_file.is_file():
        raise FileNotFoundError(f"{tokenizer_file} not found (texts need the official tokenizer.model)")
    _write(args, load_images(args.image, resolution, args.jpeg_draft), tokenizer_file)
    return 0


def _write(args: argparse.Namespace, pixels: np.ndarray, tokenizer_file: Path) -> None:
    import numpy as np

    from training.tipsv2.checkpoint import load_pretrained
    from training.tipsv2.encode import encode
    from training.tipsv2.tokenizer import Tokenizer

    model = load_pretrained(args.weights, args.variant)
    tokenizer = Tokenizer(tokenizer_file, model.cfg.text_cfg.max_len) if args.text else None
    arrays = encode(model, tokenizer, pixels, args.text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "wb") as out:  # a file object: numpy would append ".npz" to another suffix
        np.savez(out, **arrays)
    shapes = ", ".join(f"{key} {value.shape}" for key, value in arrays.items())
    print(f"wrote {args.output}: {shapes}")
