"""`tipsv2 weights`: fetch the official TIPSv2 checkpoints, check their layout, convert npz <-> safetensors."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from training.tipsv2.pretrained import PYTORCH_BASE_URL, TOKENIZER_URL

    parser = subparsers.add_parser("weights", help="download, verify and convert official checkpoints")
    sub = parser.add_subparsers(dest="weights_command", required=True)

    download = sub.add_parser("download", help="fetch the official .npz files and tokenizer.model")
    download.add_argument("--variant", required=True, help="b14, l14, so14 (or so400m14), g14, or tipsv2-b14, ...")
    download.add_argument("--dir", type=Path, required=True, help="directory to write the files to")
    download.add_argument("--base-url", default=PYTORCH_BASE_URL, help="checkpoint base URL (a mirror)")
    download.add_argument("--tokenizer-url", default=TOKENIZER_URL)
    download.add_argument("--timeout", type=float, default=30.0, help="seconds per connection or read")
    download.add_argument("--force", action="store_true", help="download even the files already present")
    download.add_argument("--no-verify", action="store_true", help="skip the key/shape check of the files")
    download.set_defaults(func=_download)

    verify = sub.add_parser("verify", help="check a directory's official files against a variant (names, shapes)")
    verify.add_argument("--variant", required=True)
    verify.add_argument("--dir", type=Path, required=True)
    verify.set_defaults(func=_verify)

    convert = sub.add_parser("convert", help="convert one tower file: .npz -> .safetensors or back")
    convert.add_argument("src", type=Path)
    convert.add_argument("dst", type=Path)
    convert.set_defaults(func=_convert)


def _download(args: argparse.Namespace) -> int:
    from training.tipsv2.download import download_official

    paths = download_official(
        args.variant,
        args.dir,
        base_url=args.base_url,
        tokenizer_url=args.tokenizer_url,
        timeout=args.timeout,
        force=args.force,
    )
    for path in paths:
        print(f"{path} ({path.stat().st_size} bytes)")
    if not args.no_verify:
        return _verify(args)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from training.tipsv2.checkpoint import verify_official

    vision, text = verify_official(args.dir, args.variant)
    print(f"{vision.name} and {text.name} match the official {args.variant} layout")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from training.tipsv2.checkpoint import convert_checkpoint

    print(f"wrote {convert_checkpoint(args.src, args.dst)}")
    return 0
