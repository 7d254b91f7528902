"""Words of the generated world and a caption corpus over them (used to train the tiny model's tokenizer).

The corpus is deterministic for a seed, so every machine builds the same tokenizer for the local model.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

# The 9 TCL prompt templates of the official zero-shot notebooks live in the (torch-free) model library; the
# corpus fills each with every class name. Still importable from here.
from training.tipsv2.prompts import TCL_TEMPLATES

COLORS = [
    "red",
    "green",
    "blue",
    "yellow",
    "orange",
    "purple",
    "pink",
    "brown",
    "black",
    "white",
    "gray",
    "cyan",
    "magenta",
    "teal",
    "navy",
    "olive",
    "maroon",
    "gold",
    "silver",
    "beige",
]
SHAPES = [
    "circle",
    "square",
    "triangle",
    "star",
    "hexagon",
    "diamond",
    "ring",
    "cross",
    "rectangle",
    "ellipse",
    "pentagon",
    "heart",
    "arrow",
    "crescent",
    "trapezoid",
]
TEXTURES = ["plain", "striped", "dotted", "checkered", "wavy", "gradient", "noisy", "hatched"]
SIZES = ["tiny", "small", "medium", "large", "huge"]
POSITIONS = ["top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"]
BACKGROUNDS = ["grass", "sand", "water", "sky", "snow", "wood", "stone", "brick", "carpet", "metal", "paper", "cloth"]
OBJECTS = [
    "cat",
    "dog",
    "bird",
    "horse",
    "cow",
    "sheep",
    "car",
    "bus",
    "bicycle",
    "boat",
    "plane",
    "train",
    "tree",
    "flower",
    "house",
    "road",
    "person",
    "chair",
    "table",
    "bottle",
    "cup",
    "book",
    "clock",
    "lamp",
    "bed",
    "window",
    "door",
    "mountain",
    "river",
    "building",
    "bridge",
    "fence",
    "sign",
    "ball",
    "kite",
    "umbrella",
]
STYLES = ["photo", "sketch", "painting", "cartoon", "render", "drawing", "mosaic", "origami", "video game", "art"]

SENTENCE_FORMS = [
    "a {size} {color} {shape} on {background}.",
    "a {texture} {color} {shape} in the {position}.",
    "there is a {color} {shape} and a {color2} {shape2}.",
    "a {style} of a {object} next to a {color} {shape}.",
    "{color} {shape}, {texture}, {background} background",
    "the image shows a {size} {object} at the {position} of the picture.",
    "two {color} {shape}s above a {color2} {shape2} on a {texture} {background} surface.",
]


def caption_corpus(n: int = 20_000, seed: int = 0) -> Iterator[str]:
    """Sentences over the world's words, including every TCL template filled with every class name."""
    # Every printable ASCII character, so that no character of ordinary text becomes <unk>.
    yield " ".join(chr(c) for c in range(33, 127))
    for template in TCL_TEMPLATES:
        for word in SHAPES + OBJECTS:
            yield template.format(word)
    rng = random.Random(seed)
    for _ in range(n):
        form = rng.choice(SENTENCE_FORMS)
        yield form.format(
            size=rng.choice(SIZES),
            color=rng.choice(COLORS),
            color2=rng.choice(COLORS),
            shape=rng.choice(SHAPES),
            shape2=rng.choice(SHAPES),
            texture=rng.choice(TEXTURES),
            position=rng.choice(POSITIONS),
            background=rng.choice(BACKGROUNDS),
            object=rng.choice(OBJECTS),
            style=rng.choice(STYLES),
        )


# ---- The generated world's segmentation classes and caption vocabulary (used by `training.data.synth`). ----
# Appended below the corpus on purpose: `caption_corpus` (and so the local tokenizer) must not change.

# Per-pixel classes of the generated masks: every background kind, then every drawable shape. The order is the
# class id order of the masks and is part of the shard format (written to each dataset's manifest).
SEGMENTATION_CLASSES: tuple[str, ...] = (*BACKGROUNDS, *SHAPES)
IGNORE_INDEX = 255

# The three synthetic-caption granularities (TIPSv2's short / medium / dense captions) and the web-style alt-text.
CAPTION_GRANULARITIES: tuple[str, ...] = ("keywords", "sentence", "dense")
ALT_TEXT = "alt"
CAPTION_SOURCES: tuple[str, ...] = (ALT_TEXT, *CAPTION_GRANULARITIES)

# Words of noisy web alt-text that say nothing about the pixels (file names, shop talk, styles).
ALT_FILLERS = [
    "free download",
    "stock image",
    "wallpaper",
    "hd",
    "royalty free",
    "vector",
    "clipart",
    "best",
    "new",
    "design",
    "icon",
    "sale",
    "pattern",
    "background",
    "png",
]


def segmentation_class_id(name: str) -> int:
    """The mask id of a background or shape name."""
    return SEGMENTATION_CLASSES.index(name)
