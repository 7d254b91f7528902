"""`tipsv2 data synth`: image-text shards of the procedural world, with exact masks and captions.

Each sample is three tar members:
- `{key}.png`: the RGB image (lossless, so pixels and mask agree exactly);
- `{key}.mask.png`: 8-bit per-pixel class ids into `segmentation_classes` (255 = ignore, unused by the generator);
- `{key}.json`: `{"alt": str, "captions": {"keywords", "sentence", "dense"}, "label": shape or null,
  "background": str, "objects": [{shape, color, texture, size, position, visible_pixels}], "mask_classes":
  {id: name}}`.

The dataset's `manifest.json` holds the class vocabularies, caption sources, image size, seed and shard list.
Sample `i` of split `s` is a pure function of (seed, s, i): sharding and worker count never change a sample.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from training.data.captions import scene_captions
from training.data.render import render_scene, shape_label
from training.data.shards import ShardWriter, write_manifest
from training.data.vocabulary import (
    CAPTION_SOURCES,
    IGNORE_INDEX,
    SEGMENTATION_CLASSES,
    SHAPES,
)
from training.data.world import sample_scene

FORMAT = "tipsv2-synth-v1"


@dataclass(frozen=True)
class SynthSample:
    """A decoded sample: what training and evaluation read back from a shard."""

    key: str
    image: np.ndarray  # (S, S, 3) uint8
    mask: np.ndarray  # (S, S) uint8 class ids
    meta: dict[str, Any]

    def text(self, source: str) -> str:
        """The alt-text (`alt`) or a synthetic caption (`keywords`, `sentence`, `dense`)."""
        return str(self.meta["alt"]) if source == "alt" else str(self.meta["captions"][source])


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(split.encode()), index])


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def make_sample(index: int, seed: int, split: str, image_size: int, max_objects: int) -> tuple[str, dict[str, bytes]]:
    """(key, tar members) of sample `index`."""
    rng = sample_rng(seed, split, index)
    scene = sample_scene(rng, max_objects)
    rendered = render_scene(scene, rng, image_size)
    present = sorted(int(c) for c in np.unique(rendered.mask))
    meta = {
        "alt": None,
        "captions": {},
        "label": shape_label(scene, rendered),
        "background": scene.background,
        "objects": [
            {
                "shape": o.shape,
                "color": o.color,
                "texture": o.texture,
                "size": o.size,
                "position": o.position,
                "visible_pixels": visible,
            }
            for o, visible in zip(scene.objects, rendered.visible_pixels, strict=True)
        ],
        "mask_classes": {str(c): SEGMENTATION_CLASSES[c] for c in present},
    }
    texts = scene_captions(scene, rendered.visible_pixels, rng)
    meta["alt"] = texts.pop("alt")
    meta["captions"] = texts
    key = f"{split}-{index:08d}"
    files = {
        "png": png_bytes(rendered.image),
        "mask.png": png_bytes(rendered.mask),
        "json": json.dumps(meta, sort_keys=True).encode(),
    }
    return key, files


def decode_sample(key: str, files: dict[str, bytes]) -> SynthSample:
    for ext in ("png", "mask.png", "json"):
        if ext not in files:
            raise ValueError(f"sample {key} has no .{ext} member")
    image = np.asarray(Image.open(io.BytesIO(files["png"])).convert("RGB"), dtype=np.uint8)
    mask = np.asarray(Image.open(io.BytesIO(files["mask.png"])), dtype=np.uint8)
    return SynthSample(key, image, mask, json.loads(files["json"]))


SampleMaker = Callable[[int, int, str, int, int], tuple[str, dict[str, bytes]]]


def _make_shard(job: tuple[SampleMaker, Path, str, int, int, int, int, int, int]) -> dict[str, Any]:
    make, directory, split, shard_index, start, stop, seed, image_size, max_objects = job
    with ShardWriter(directory, split, stop - start, first_index=shard_index) as writer:
        for index in range(start, stop):
            writer.write(*make(index, seed, split, image_size, max_objects))
    return writer.shards[0]


def write_dataset(
    out_dir: str | Path,
    make: SampleMaker,
    manifest: dict[str, Any],
    num_samples: int,
    samples_per_shard: int,
    image_size: int,
    seed: int,
    split: str,
    max_objects: int,
    workers: int,
) -> dict[str, Any]:
    """Writes samples `make(index, seed, split, image_size, max_objects)` as shards (in `workers` processes; `make`
    must be a module-level function) plus `manifest.json` holding `manifest` and the generation settings."""
    if num_samples <= 0 or samples_per_shard <= 0:
        raise ValueError("num_samples and samples_per_shard must be positive")
    if image_size < 16:
        raise ValueError(f"image_size {image_size} is too small to draw shapes on")
    if "-" in split or "." in split or "/" in split:
        raise ValueError(f"split name {split!r} must not contain '-', '.' or '/'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [
        (make, out, split, k, start, min(start + samples_per_shard, num_samples), seed, image_size, max_objects)
        for k, start in enumerate(range(0, num_samples, samples_per_shard))
    ]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            shards = list(pool.map(_make_shard, jobs))
    else:
        shards = [_make_shard(job) for job in jobs]
    full = {
        "format": FORMAT,
        **manifest,
        "split": split,
        "seed": seed,
        "num_samples": num_samples,
        "image_size": image_size,
        "max_objects": max_objects,
        "shards": shards,
    }
    write_manifest(out, full)
    return full


def generate_dataset(
    out_dir: str | Path,
    num_samples: int,
    samples_per_shard: int = 1000,
    image_size: int = 112,
    seed: int = 0,
    split: str = "train",
    max_objects: int = 3,
    workers: int = 1,
) -> dict[str, Any]:
    """Writes `num_samples` samples as shards plus `manifest.json` into `out_dir`; returns the manifest."""
    vocabularies = {
        "segmentation_classes": list(SEGMENTATION_CLASSES),
        "classification_classes": list(SHAPES),
        "caption_sources": list(CAPTION_SOURCES),
        "ignore_index": IGNORE_INDEX,
    }
    return write_dataset(
        out_dir,
        make_sample,
        vocabularies,
        num_samples,
        samples_per_shard,
        image_size,
        seed,
        split,
        max_objects,
        workers,
    )
