"""Augmented views of an image (PIL + numpy): the caption view, random-resized crops, flips.

No colour jitter, blur or solarisation (DINO's photometric augmentations): in this world colour is what the
captions talk about, so making the encoder colour-invariant would fight the image-text objective.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image


def random_resized_box(
    rng: np.random.Generator,
    width: int,
    height: int,
    scale: tuple[float, float],
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> tuple[int, int, int, int]:
    """A crop box (left, top, right, bottom) as torchvision's `RandomResizedCrop.get_params` draws it."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(attempts):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    side = min(width, height)  # fallback: the central square
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def to_chw(image: Image.Image) -> np.ndarray:
    """PIL RGB -> float32 (3, H, W) in [0, 1], the model's input convention (no mean/std normalisation)."""
    return np.ascontiguousarray(np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / np.float32(255.0))


def resized_view(image: Image.Image, size: int) -> np.ndarray:
    """The whole image at `size` x `size`: the view whose captions stay true (nothing cropped, nothing flipped)."""
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return to_chw(image)


def random_crop_view(rng: np.random.Generator, image: Image.Image, size: int, scale: tuple[float, float]) -> np.ndarray:
    """A random-resized crop at `size` x `size`, flipped horizontally with probability 1/2."""
    box = random_resized_box(rng, image.width, image.height, scale)
    view = image.resize((size, size), Image.Resampling.BILINEAR, box=box)
    if rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return to_chw(view)
