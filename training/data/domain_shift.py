"""A domain-shift task for adapters: the generated world seen by a false-colour survey sensor and labelled with a
surveyor's land-cover words.

The scenes are the world's own (`world.sample_scene`, drawn by `render.render_scene`, masks exact), but what each
tower sees changes:
- style: every image is a false-colour negative of the world's rendering, `255 - image[..., (G, B, R)]` (the
  sensor's bands mapped to display colours in another order, inverted): grass comes out pink-violet, water
  orange, snow dark blue. The shapes and textures are all there; every colour is different;
- words: the task's label is the land cover (the world's background kind), named in the tenant's vocabulary
  (`COVER_NAMES`: "sward" for grass, "loch" for water, "firn" for snow, ...). None of these words is in the
  world's captions or prompts.
A model trained on the world knows its backgrounds under their own names and colours, so its zero-shot accuracy
here is low; an adapter has to bridge both gaps: undo the colour map on the image side, map the new words on the
text side. Samples are written in the exact shard format of `training.data.synth` (same members, same JSON keys,
same manifest keys plus `"world": "survey"`), so every reader, `tipsv2 eval` included, works unchanged; the mask
ids are the world's (backgrounds, then shapes), with the backgrounds renamed in the class list. A sample is a pure
function of (seed, split, index) and is never one of the world's samples (the world's name is part of its seed).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from training.data.render import render_scene
from training.data.synth import png_bytes, write_dataset
from training.data.vocabulary import ALT_FILLERS, BACKGROUNDS, CAPTION_SOURCES, IGNORE_INDEX, SHAPES
from training.data.world import Scene, SceneObject, sample_scene

WORLD = "survey"

# The world's background kind -> the survey's land-cover name. None of these words is in the world's texts.
COVER_NAMES: dict[str, str] = {
    "grass": "sward",
    "sand": "erg",
    "water": "loch",
    "sky": "welkin",
    "snow": "firn",
    "wood": "timber",
    "stone": "scree",
    "brick": "masonry",
    "carpet": "tapis",
    "metal": "alloy",
    "paper": "vellum",
    "cloth": "tweed",
}
assert list(COVER_NAMES) == BACKGROUNDS, "one land-cover name per world background, in the world's order"
CLASSIFICATION_CLASSES: tuple[str, ...] = tuple(COVER_NAMES.values())
SEGMENTATION_CLASSES: tuple[str, ...] = (*CLASSIFICATION_CLASSES, *SHAPES)  # the world's mask ids, renamed
BAND_ORDER = (1, 2, 0)  # display R, G, B <- world G, B, R


def survey_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(split.encode()), index, zlib.crc32(WORLD.encode())])


def false_colour(image: np.ndarray) -> np.ndarray:
    """(S, S, 3) uint8 -> the survey sensor's rendering: bands reordered, then inverted."""
    return (255 - image[..., BAND_ORDER]).astype(np.uint8)


def _visible(scene: Scene, visible_pixels: tuple[int, ...]) -> list[SceneObject]:
    order = sorted(range(len(scene.objects)), key=lambda i: -visible_pixels[i])
    return [scene.objects[i] for i in order if visible_pixels[i] > 0]


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def survey_captions(scene: Scene, visible_pixels: tuple[int, ...], rng: np.random.Generator) -> dict[str, str]:
    """The four texts of a sample (`vocabulary.CAPTION_SOURCES`): land cover in the survey's words, objects by
    size, shape and position (their colours are not the world's, so none is named)."""
    cover = COVER_NAMES[scene.background]
    objects = _visible(scene, visible_pixels)
    number = int(rng.integers(100, 10_000))
    alt = str(rng.choice([f"{cover} survey tile {number}", f"tile_{number}.tif", f"{cover} {rng.choice(ALT_FILLERS)}"]))
    if not objects:
        return {
            "alt": alt,
            "keywords": cover,
            "sentence": f"a survey tile of bare {cover}.",
            "dense": f"a false-colour survey tile of {cover} with nothing on it.",
        }
    return {
        "alt": alt,
        "keywords": ", ".join([cover, *(o.shape for o in objects)]),
        "sentence": f"a survey tile of {cover} with {_join([f'a {o.size} {o.shape}' for o in objects])}.",
        "dense": f"a false-colour survey tile of {cover} with "
        + _join([f"a {o.size} {o.texture} {o.shape} at the {o.position}" for o in objects])
        + ".",
    }


def make_survey_sample(
    index: int, seed: int, split: str, image_size: int, max_objects: int
) -> tuple[str, dict[str, bytes]]:
    """(key, tar members) of survey sample `index`, in `training.data.synth`'s sample format."""
    rng = survey_rng(seed, split, index)
    scene = sample_scene(rng, max_objects)
    rendered = render_scene(scene, rng, image_size)
    texts = survey_captions(scene, rendered.visible_pixels, rng)
    present = sorted(int(c) for c in np.unique(rendered.mask))
    meta = {
        "alt": texts.pop("alt"),
        "captions": texts,
        "label": COVER_NAMES[scene.background],
        "background": COVER_NAMES[scene.background],
        "world_background": scene.background,
        "objects": [
            {
                "shape": o.shape,
                "color": o.color,  # the world's colour name; the pixels show its false colour
                "texture": o.texture,
                "size": o.size,
                "position": o.position,
                "visible_pixels": visible,
            }
            for o, visible in zip(scene.objects, rendered.visible_pixels, strict=True)
        ],
        "mask_classes": {str(c): SEGMENTATION_CLASSES[c] for c in present},
    }
    files = {
        "png": png_bytes(false_colour(rendered.image)),
        "mask.png": png_bytes(rendered.mask),
        "json": json.dumps(meta, sort_keys=True).encode(),
    }
    return f"{split}-{index:08d}", files


def generate_survey_dataset(
    out_dir: str | Path,
    num_samples: int,
    samples_per_shard: int = 1000,
    image_size: int = 112,
    seed: int = 0,
    split: str = "train",
    max_objects: int = 3,
    workers: int = 1,
) -> dict[str, Any]:
    """Writes `num_samples` survey samples as shards plus `manifest.json`; the arguments mean what they mean for
    `training.data.synth.generate_dataset`."""
    vocabularies = {
        "world": WORLD,
        "segmentation_classes": list(SEGMENTATION_CLASSES),
        "classification_classes": list(CLASSIFICATION_CLASSES),
        "caption_sources": list(CAPTION_SOURCES),
        "ignore_index": IGNORE_INDEX,
    }
    return write_dataset(
        out_dir,
        make_survey_sample,
        vocabularies,
        num_samples,
        samples_per_shard,
        image_size,
        seed,
        split,
        max_objects,
        workers,
    )
