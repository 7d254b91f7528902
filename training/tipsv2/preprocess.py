"""Image preprocessing as the official TIPSv2 code does it (no torch).

Official (`pytorch/run_image_encoder_inference.py`): `Resize((448, 448))` (PIL bilinear) then `ToTensor()`: values
in [0, 1], **no** mean/std normalisation (its `Normalize((0, 0, 0), (1, 1, 1))` is the identity). Any multiple of the
patch size works as resolution. Here the resize happens on PIL and the result stays uint8 (H, W, 3) so that clients
and the gateway ship a quarter of the bytes; `to_model_input` does the exact `/ 255` of `ToTensor`.
Zero-shot segmentation resizes differently (short side, bicubic): `resize_short_side`. Bytes become an upright RGB
image by `decoding.decode_image`, the one decoding path of the gateway and `tipsv2 encode`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from training.tipsv2.decoding import decode_image
from training.tipsv2.windows import short_side_size

PATCH_SIZE = 14


def check_resolution(resolution: int, patch_size: int = PATCH_SIZE) -> int:
    if resolution <= 0 or resolution % patch_size:
        raise ValueError(f"resolution {resolution} is not a positive multiple of the patch size {patch_size}")
    return resolution


def resize_uint8(image: Image.Image, resolution: int) -> np.ndarray:
    """Resizes to (resolution, resolution) with PIL bilinear, as `torchvision.transforms.Resize` does; uint8 HWC."""
    check_resolution(resolution)
    resized = image.resize((resolution, resolution), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def resize_short_side(image: Image.Image, size: int) -> Image.Image:
    """Short side to `size` with PIL bicubic, the zero-shot segmentation notebooks' `ShortSideResize(size, BICUBIC)`.

    The notebooks apply it to the PIL image, where torchvision's resize is `PIL.Image.resize` (always antialiased).
    """
    height, width = short_side_size(image.height, image.width, size)
    if (height, width) == (image.height, image.width):
        return image
    return image.resize((width, height), Image.Resampling.BICUBIC)


def to_model_input(pixels: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) → float32 (..., 3, H, W) in [0, 1], exactly `ToTensor()` without normalisation."""
    chw = np.moveaxis(pixels, -1, -3)
    return np.ascontiguousarray(chw, dtype=np.float32) / np.float32(255.0)


def preprocess(data: bytes, resolution: int = 448, jpeg_draft: bool = True) -> np.ndarray:
    """Image bytes → float32 (3, resolution, resolution) model input."""
    image = decode_image(data, min_size=resolution if jpeg_draft else None)
    return to_model_input(resize_uint8(image, resolution))
