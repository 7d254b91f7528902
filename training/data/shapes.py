"""Exact pixel masks of the world's 15 shapes.

Every shape is a list of polygons in unit coordinates (radius 1 around the origin, y down), each filled with 1 or
cut out with 0 in order (a ring is a disc with a hole). Rasterising without anti-aliasing makes the mask exactly the
set of pixels the shape owns, so the segmentation ground truth has no ambiguous edge pixels.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

Polygon = np.ndarray  # (V, 2) float, unit coordinates


def regular(sides: int, radius: float = 1.0, phase_deg: float = -90.0) -> Polygon:
    angles = np.deg2rad(phase_deg + 360.0 * np.arange(sides) / sides)
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def ellipse(rx: float, ry: float, dx: float = 0.0, segments: int = 48) -> Polygon:
    angles = np.linspace(0.0, 2 * math.pi, segments, endpoint=False)
    return np.stack([dx + rx * np.cos(angles), ry * np.sin(angles)], axis=1)


def star(points: int = 5, inner: float = 0.45) -> Polygon:
    outer = regular(2 * points, 1.0)
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.asarray(outer * radii[:, None])


def heart(segments: int = 48) -> Polygon:
    t = np.linspace(0.0, 2 * math.pi, segments, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return np.asarray(np.stack([x, y + 2.5], axis=1) / 17.0)


def box(half_w: float, half_h: float) -> Polygon:
    return np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h], [-half_w, half_h]])


@cache
def unit_shape(shape: str) -> tuple[tuple[Polygon, int], ...]:
    """(polygon, fill) pairs drawn in order; fill 0 cuts a hole."""
    a = 0.32  # half-width of the cross's arms
    table: dict[str, tuple[tuple[Polygon, int], ...]] = {
        "circle": ((ellipse(1.0, 1.0), 1),),
        "square": ((box(0.8, 0.8), 1),),
        "triangle": ((regular(3), 1),),
        "star": ((star(), 1),),
        "hexagon": ((regular(6, phase_deg=0.0), 1),),
        "diamond": ((np.array([[0.0, -1.0], [0.62, 0.0], [0.0, 1.0], [-0.62, 0.0]]), 1),),
        "ring": ((ellipse(1.0, 1.0), 1), (ellipse(0.55, 0.55), 0)),
        "cross": ((box(1.0, a), 1), (box(a, 1.0), 1)),
        "rectangle": ((box(1.0, 0.55), 1),),
        "ellipse": ((ellipse(1.0, 0.6), 1),),
        "pentagon": ((regular(5), 1),),
        "heart": ((heart(), 1),),
        "arrow": (
            (
                np.array(
                    [[-1.0, -0.22], [0.15, -0.22], [0.15, -0.6], [1.0, 0.0], [0.15, 0.6], [0.15, 0.22], [-1.0, 0.22]]
                ),
                1,
            ),
        ),
        "crescent": ((ellipse(1.0, 1.0), 1), (ellipse(0.85, 0.85, dx=0.5), 0)),
        "trapezoid": ((np.array([[-0.5, -0.6], [0.5, -0.6], [1.0, 0.6], [-1.0, 0.6]]), 1),),
    }
    if shape not in table:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(table)}")
    return table[shape]


def shape_mask(shape: str, center: tuple[float, float], radius: float, rotation_deg: float, size: int) -> np.ndarray:
    """(size, size) bool mask of `shape` centred at `center` (fractions of the side) with radius `radius`."""
    theta = math.radians(rotation_deg)
    # y points down in image coordinates, so this matrix turns the shape counter-clockwise on screen.
    rot = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = center[0] * size, center[1] * size
    for polygon, fill in unit_shape(shape):
        points = polygon @ rot.T * (radius * size) + np.array([cx, cy])
        draw.polygon([tuple(p) for p in points.tolist()], fill=fill)
    return np.asarray(canvas, dtype=bool)
