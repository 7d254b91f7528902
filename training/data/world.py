"""The generated world's scenes: a background kind and a few coloured, textured shapes, sampled from a seed.

A `Scene` is pure description (no pixels): `render.render_scene` draws it, `captions` describes it. Keeping the two
apart is what makes the captions exactly true of the image and the masks exactly true of the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.data.vocabulary import BACKGROUNDS, COLORS, POSITIONS, SHAPES, SIZES, TEXTURES

# Object radius as a fraction of the image side, per size word. The ranges do not overlap, so the word is exact.
SIZE_RADIUS: dict[str, tuple[float, float]] = {
    "tiny": (0.07, 0.09),
    "small": (0.10, 0.13),
    "medium": (0.14, 0.18),
    "large": (0.19, 0.24),
    "huge": (0.25, 0.31),
}
MAX_ROTATION_DEG = 30.0  # keeps "heart", "arrow", "trapezoid" recognisably upright


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    texture: str
    size: str
    center: tuple[float, float]  # (x, y), fractions of the image side from the top-left corner
    radius: float  # fraction of the image side
    rotation: float  # degrees, counter-clockwise

    @property
    def position(self) -> str:
        """The 3x3-grid position word of the centre ("top left" ... "bottom right")."""
        col = min(int(self.center[0] * 3), 2)
        row = min(int(self.center[1] * 3), 2)
        return POSITIONS[row * 3 + col]


@dataclass(frozen=True)
class Scene:
    background: str
    objects: tuple[SceneObject, ...]  # drawing order: later objects are drawn on top


def sample_object(rng: np.random.Generator, placed: list[SceneObject]) -> SceneObject | None:
    """A random object that overlaps the already placed ones at most a little; None if none fits after retries."""
    shape, color, texture = rng.choice(SHAPES), rng.choice(COLORS), rng.choice(TEXTURES)
    size = str(rng.choice(SIZES))
    low, high = SIZE_RADIUS[size]
    radius = float(rng.uniform(low, high))
    for _ in range(20):
        center = (float(rng.uniform(radius, 1 - radius)), float(rng.uniform(radius, 1 - radius)))
        # Centres at least 0.8 x (sum of radii) apart: shapes may touch but stay mostly visible, so every
        # object a caption names can be seen and segmented.
        if all(np.hypot(center[0] - o.center[0], center[1] - o.center[1]) >= 0.8 * (radius + o.radius) for o in placed):
            rotation = float(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
            return SceneObject(str(shape), str(color), str(texture), size, center, radius, rotation)
    return None


def sample_scene(rng: np.random.Generator, max_objects: int = 3) -> Scene:
    """One to `max_objects` objects on a random background."""
    background = str(rng.choice(BACKGROUNDS))
    wanted = int(rng.integers(1, max_objects + 1))
    objects: list[SceneObject] = []
    for _ in range(wanted):
        obj = sample_object(rng, objects)
        if obj is not None:
            objects.append(obj)
    return Scene(background, tuple(objects))
