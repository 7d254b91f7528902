"""Geometry of the official zero-shot segmentation protocol, torch-free so the gateway can share it.

Source: `ShortSideResize` and `predict_slide` in google-deepmind/tips `pytorch/TIPSv2_Segmentation.ipynb` (identical
in `TIPS_zeroshot_segmentation.ipynb`).
"""

from __future__ import annotations

from typing import NamedTuple


class Window(NamedTuple):
    """A crop `[top:bottom, left:right]` of the (resized) image."""

    top: int
    bottom: int
    left: int
    right: int


def short_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(new_height, new_width) with the short side equal to `size`, the long side truncated like the notebook.

    `int(size * long / short)` (Python float arithmetic, truncation), and no resize when the short side already
    equals `size`: exactly `ShortSideResize`.
    """
    if height <= 0 or width <= 0 or size <= 0:
        raise ValueError(f"sizes must be positive, got {height}x{width} -> short side {size}")
    if (width <= height and width == size) or (height <= width and height == size):
        return height, width
    if width < height:
        return int(size * height / width), size
    return size, int(size * width / height)


def sliding_windows(height: int, width: int, side: int, stride: int) -> list[Window]:
    """The windows `predict_slide` visits, in its order (rows, then columns).

    Windows start every `stride` pixels; the last row/column is shifted back so it ends at the border, and a
    dimension shorter than `side` is covered by one window of the whole dimension. All windows have the same shape
    `(min(side, height), min(side, width))`, and together they cover every pixel.
    """
    if side <= 0 or stride <= 0:
        raise ValueError(f"window side and stride must be positive, got side={side}, stride={stride}")
    rows = max(height - side + stride - 1, 0) // stride + 1
    cols = max(width - side + stride - 1, 0) // stride + 1
    windows = []
    for i in range(rows):
        for j in range(cols):
            bottom = min(i * stride + side, height)
            right = min(j * stride + side, width)
            windows.append(Window(max(bottom - side, 0), bottom, max(right - side, 0), right))
    return windows
