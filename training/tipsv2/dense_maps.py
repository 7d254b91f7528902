"""Dense predictions as files (no torch): depth as 16-bit PNG in millimetres, normals as RGB, label maps, summaries.

Encodings, shared by `tipsv2 dense` and (later) the gateway:
- Depth: metres * 1000 rounded to the nearest millimetre, clipped to [0, 65535], one 16-bit grayscale PNG channel.
  The heads predict 0.001-10 m, so no real prediction is clipped.
- Normals: the usual RGB encoding of unit vectors, `round((n + 1) / 2 * 255)` per channel (x -> R, y -> G, z -> B),
  in the decoder's own frame (NYU's camera frame, as the official notebook displays it).
- Segmentation: a grayscale PNG whose values are class indices (8-bit up to 256 classes, else 16-bit), the format of
  the zero-shot label maps.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

MM_PER_M = 1000.0
UINT16_MAX = 65535


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) metres -> (H, W) uint16 millimetres."""
    millimetres: np.ndarray = np.clip(np.rint(np.asarray(depth_m, np.float64) * MM_PER_M), 0, UINT16_MAX)
    return millimetres.astype(np.uint16)


def depth_png(depth_m: np.ndarray) -> bytes:
    """A 16-bit grayscale PNG of the depth in millimetres."""
    return png_bytes(Image.fromarray(depth_to_mm(depth_m)))


def normals_to_rgb(normals: np.ndarray) -> np.ndarray:
    """(H, W, 3) unit vectors in [-1, 1] -> (H, W, 3) uint8."""
    rgb: np.ndarray = np.clip(np.rint((np.asarray(normals, np.float64) + 1.0) * 127.5), 0, 255)
    return rgb.astype(np.uint8)


def normals_png(normals: np.ndarray) -> bytes:
    return png_bytes(Image.fromarray(normals_to_rgb(normals), "RGB"))


def label_png(labels: np.ndarray, n_classes: int) -> bytes:
    """Class indices (H, W) as a grayscale PNG: 8-bit up to 256 classes, else 16-bit."""
    return png_bytes(Image.fromarray(labels.astype(np.uint8 if n_classes <= 256 else np.uint16)))


def depth_summary(depth_m: np.ndarray) -> dict[str, float]:
    """Minimum, maximum and median depth in metres."""
    return {
        "min_m": float(np.min(depth_m)),
        "max_m": float(np.max(depth_m)),
        "median_m": float(np.median(depth_m)),
    }


def class_shares(labels: np.ndarray, names: Sequence[str], top: int | None = None) -> list[dict[str, float | str]]:
    """The classes present, largest share of pixels first: [{"class": name, "index": i, "share": fraction}]."""
    counts = np.bincount(labels.ravel(), minlength=len(names))
    order = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0][:top]
    return [{"class": names[i], "index": i, "share": float(counts[i] / labels.size)} for i in order]
