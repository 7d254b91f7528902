"""`tipsv2 weights`: fetch official checkpoints and DPT heads, check their layout, convert npz <-> safetensors."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from training.tipsv2.heads import TASKS
    from training.tipsv2.pretrained import DPT_BASE_URL, PYTORCH_BASE_URL, TOKENIZER_URL

    heads_help = f"DPT decoders too: {', '.join(TASKS)} or all (default: none)"

    parser = subparsers.add_parser("weights", help="download, verify and convert official checkpoints")
    sub = parser.add_subparsers(dest="weights_command", required=True)

    download = sub.add_parser("download", help="fetch the official .npz files and tokenizer.model")
    download.add_argument("--variant", required=True, help="b14, l14, so14 (or so400m14), g14, or tipsv2-b14, ...")
    download.add_argument("--dir", type=Path, required=True, help="directory to write the files to")
    download.add_argument("--base-url", default=PYTORCH_BASE_URL, help="checkpoint base URL (a mirror)")
    download.add_argument("--tokenizer-url", default=TOKENIZER_URL)
    download.add_argument("--timeout", type=float, default=30.0, help="seconds per connection or read")
    download.add_argument("--head", nargs="+", action="extend", choices=(*TASKS, "all"), default=[], help=heads_help)
    download.add_argument("--dpt-base-url", default=DPT_BASE_URL, help="DPT decoder base URL (a mirror)")
    download.add_argument("--force", action="store_true", help="download even the files already present")
    download.add_argument("--no-verify", action="store_true", help="skip the key/shape check of the files")
    download.set_defaults(func=_download)

    verify = sub.add_parser("verify", help="check a directory's official files against a variant (names, shapes)")
    verify.add_argument("--variant", required=True)
    verify.add_argument("--dir", type=Path, required=True)
    verify.add_argument("--head", nargs="+", action="extend", choices=(*TASKS, "all"), default=[], help=heads_help)
    verify.set_defaults(func=_verify)

    convert = sub.add_parser("convert", help="convert one tower file: .npz -> .safetensors or back")
    convert.add_argument("src", type=Path)
    convert.add_argument("dst", type=Path)
    convert.set_defaults(func=_convert)


def _heads(args: argparse.Namespace) -> tuple[str, ...]:
    from training.tipsv2.heads import TASKS

    return TASKS if "all" in args.head else tuple(dict.fromkeys(args.head))


def _download(args: argparse.Namespace) -> int:
    from training.tipsv2.download import download_decoders, download_official

    paths = download_official(
        args.variant,
        args.dir,
        base_url=args.base_url,
        tokenizer_url=args.tokenizer_url,
        timeout=args.timeout,
        force=args.force,
    )
    if _heads(args):
        paths += download_decoders(
            args.variant, args.dir, _heads(args), base_url=args.dpt_base_url, timeout=args.timeout, force=args.force
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
    if _heads(args):
        from training.tipsv2.configs import get_model_config
        from training.tipsv2.dpt_checkpoint import verify_decoder
        from training.tipsv2.pretrained import find_decoder_file

        cfg = get_model_config(args.variant)
        for head in _heads(args):
            path = find_decoder_file(args.dir, (cfg.checkpoint_tag, *cfg.checkpoint_tag_aliases), head)
            print(f"{verify_decoder(path, args.variant, head).name} matches the official {head} decoder layout")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from training.tipsv2.checkpoint import convert_checkpoint

    print(f"wrote {convert_checkpoint(args.src, args.dst)}")
    return 0
