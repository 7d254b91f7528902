"""`tipsv2 dense`: depth, surface normals and ADE20K segmentation for image files, with the official DPT heads.

Contract (README "Command line"): DIR holds the official vision `.npz` and the `tips_v2_{tag}_{head}_dpt.zip`
decoders asked for; every image is decoded by the project's one decoding path (`decoding.py`: EXIF orientation
applied), resized to R x R for the model, and each map is written at the image's displayed size into OUT as
`{stem}.{head}.png` and/or `.npy`:

| head | PNG | NPY |
| --- | --- | --- |
| depth | 16-bit grayscale, millimetres | float32 (H, W), metres |
| normals | RGB, round((n + 1) / 2 * 255) | float32 (H, W, 3), unit vectors |
| segmentation | grayscale, ADE20K class index (0-149) | uint8 (H, W), class index |

plus `dense.json`: per image its size, the files, depth min / max / median and the largest classes.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

HEADS = ("segmentation", "depth", "normals")
SUMMARY_FILE = "dense.json"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("dense", help="depth, normals and ADE20K segmentation maps for image files")
    parser.add_argument("--weights", type=Path, required=True, help="directory with the vision .npz and DPT .zip files")
    parser.add_argument("--variant", required=True, help="b14, l14, so14 (or so400m14), g14, or tipsv2-b14, ...")
    parser.add_argument("--image", nargs="+", action="extend", default=[], type=Path, required=True)
    parser.add_argument("--head", nargs="+", action="extend", choices=HEADS, help="heads to run (default: all three)")
    parser.add_argument("--resolution", type=int, help="square model input, a multiple of 14 (default: native)")
    parser.add_argument("--format", choices=("png", "npy", "both"), default="png", help="output files (default png)")
    parser.add_argument("--output", type=Path, required=True, help="directory to write the maps to")
    parser.set_defaults(func=_dense)


@dataclass
class DecodedImage:
    path: Path
    pixels: np.ndarray  # (3, R, R) float32 model input
    size: tuple[int, int]  # (height, width) as displayed


def _dense(args: argparse.Namespace) -> int:
    """Checks every input and file before reading any weights, then predicts image by image."""
    from training.tipsv2.configs import get_model_config
    from training.tipsv2.preprocess import check_resolution
    from training.tipsv2.pretrained import find_decoder_file, find_vision_file

    if not args.weights.is_dir():
        raise FileNotFoundError(f"weights directory {args.weights} does not exist")
    cfg = get_model_config(args.variant)
    resolution = check_resolution(args.resolution or cfg.vision_cfg.img_size, cfg.vision_cfg.patch_size)
    heads = tuple(dict.fromkeys(args.head or HEADS))
    tags = (cfg.checkpoint_tag, *cfg.checkpoint_tag_aliases)
    vision_file = find_vision_file(args.weights, tags)
    decoder_files = {head: find_decoder_file(args.weights, tags, head) for head in heads}
    stems = [path.stem for path in args.image]
    if len(set(stems)) != len(stems):
        raise ValueError(f"two images share a file stem, so their outputs would collide: {sorted(stems)}")
    images = [_decode(path, resolution) for path in args.image]
    summary = _predict_all(args, cfg.name, vision_file, decoder_files, images)
    (args.output / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.output / SUMMARY_FILE}")
    return 0


def _decode(path: Path, resolution: int) -> DecodedImage:
    """The project's one decoding path (EXIF orientation applied, so the size is the displayed one), at full size:
    no JPEG draft, since the maps are written at the image's own size."""
    from training.tipsv2.decoding import ImageDecodeError, decode_image
    from training.tipsv2.preprocess import resize_uint8, to_model_input

    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    try:
        image = decode_image(path.read_bytes())
    except ImageDecodeError as exc:
        raise type(exc)(f"{path}: {exc}") from exc
    return DecodedImage(path, to_model_input(resize_uint8(image, resolution)), (image.height, image.width))


def _predict_all(
    args: argparse.Namespace,
    variant: str,
    vision_file: Path,
    decoder_files: dict[str, Path],
    images: list[DecodedImage],
) -> dict[str, Any]:
    import torch

    from training.tipsv2.checkpoint import load_pretrained_vision
    from training.tipsv2.dense import predict_dense
    from training.tipsv2.dpt_checkpoint import load_decoder
    from training.tipsv2.heads import check_task

    vision = load_pretrained_vision(vision_file.parent, variant)
    decoders = {check_task(head): load_decoder(path, variant, head) for head, path in decoder_files.items()}
    args.output.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"variant": variant, "resolution": images[0].pixels.shape[-1], "images": []}
    for image in images:
        maps = predict_dense(vision, decoders, torch.from_numpy(image.pixels[None]), image.size)
        entry: dict[str, Any] = {"image": str(image.path), "height": image.size[0], "width": image.size[1]}
        for head, batch in maps.items():
            entry[head] = _write_head(args.output, image.path.stem, head, batch[0], args.format)
        summary["images"].append(entry)
    return summary


def _write_head(out: Path, stem: str, head: str, value: np.ndarray, fmt: str) -> dict[str, Any]:
    import numpy as np

    from training.tipsv2 import dense_maps
    from training.tipsv2.heads import ADE20K_CLASSES

    info: dict[str, Any] = {"files": []}
    if head == "depth":
        png, array = dense_maps.depth_png(value), value.astype(np.float32)
        info |= dense_maps.depth_summary(value)
        detail = f"{info['min_m']:.3f}-{info['max_m']:.3f} m, median {info['median_m']:.3f} m"
    elif head == "normals":
        png, array = dense_maps.normals_png(value), value.astype(np.float32)
        detail = "unit normals"
    else:
        png, array = dense_maps.label_png(value, len(ADE20K_CLASSES)), value.astype(np.uint8)
        info["classes"] = dense_maps.class_shares(value, ADE20K_CLASSES, top=10)
        detail = ", ".join(f"{c['class']} {float(c['share']):.0%}" for c in info["classes"][:3])
    if fmt in ("png", "both"):
        (out / f"{stem}.{head}.png").write_bytes(png)
        info["files"].append(f"{stem}.{head}.png")
    if fmt in ("npy", "both"):
        np.save(out / f"{stem}.{head}.npy", array)
        info["files"].append(f"{stem}.{head}.npy")
    print(f"{stem} {head}: {', '.join(info['files'])} ({detail})")
    return info
