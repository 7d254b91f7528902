"""The official DPT dense-prediction heads as data (no torch): tasks, output sizes, depth bins, ADE20K class names.

Source: google-deepmind/tips `pytorch/decoders.py` and `pytorch/TIPS_decoder_inference.ipynb` (HEAD 4db271d). Every
released image encoder (B, L, So400m, g) has three DPT decoders, each a separate checkpoint: ADE20K semantic
segmentation (150 classes), NYU monocular depth (256 classification bins over 0.001-10 m) and NYU surface normals
(3 channels). The gateway reads these constants without the training stack.
"""

from __future__ import annotations

from typing import Literal

Task = Literal["segmentation", "depth", "normals"]
TASKS: tuple[Task, ...] = ("segmentation", "depth", "normals")

FUSION_CHANNELS = 256  # every reassembled level is projected to this width before fusion
DEPTH_BINS = 256
MIN_DEPTH_M = 0.001
MAX_DEPTH_M = 10.0

# ADE20K (SceneParsing 150) class names in label order, as the decoder notebook lists them.
# fmt: off
ADE20K_CLASSES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path",
    "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase",
    "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van",
    "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel",
    "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name",
    "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce",
    "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board",
    "shower", "radiator", "glass", "clock", "flag",
)
# fmt: on

OUT_CHANNELS: dict[Task, int] = {"segmentation": len(ADE20K_CLASSES), "depth": DEPTH_BINS, "normals": 3}


def reassemble_channels(embed_dim: int) -> tuple[int, int, int, int]:
    """Widths of the four reassembled levels, shallow to deep: (D/8, D/4, D/2, D), as the notebook builds them."""
    return embed_dim // 8, embed_dim // 4, embed_dim // 2, embed_dim


def check_task(task: str) -> Task:
    if task not in TASKS:
        raise ValueError(f"unknown dense head {task!r}; choose from {', '.join(TASKS)}")
    return task  # type: ignore[return-value]
