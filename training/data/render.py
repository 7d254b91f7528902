"""Draws a `Scene` into an RGB image and its exact per-pixel class mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.data.shapes import shape_mask
from training.data.textures import COLOR_RGB, background, shade_of, texture_pattern
from training.data.vocabulary import segmentation_class_id
from training.data.world import Scene


@dataclass(frozen=True)
class Rendered:
    image: np.ndarray  # (S, S, 3) uint8
    mask: np.ndarray  # (S, S) uint8 segmentation class ids (`vocabulary.SEGMENTATION_CLASSES`)
    visible_pixels: tuple[int, ...]  # per scene object, pixels it owns after occlusion

    def dominant_object(self) -> int | None:
        """Index of the object that owns the most pixels (the classification label), None for an empty scene."""
        if not self.visible_pixels:
            return None
        return int(np.argmax(self.visible_pixels))


def render_scene(scene: Scene, rng: np.random.Generator, size: int) -> Rendered:
    pixels = background(scene.background, rng, size)
    classes = np.full((size, size), segmentation_class_id(scene.background), dtype=np.uint8)
    owner = np.full((size, size), -1, dtype=np.int16)
    for index, obj in enumerate(scene.objects):
        inside = shape_mask(obj.shape, obj.center, obj.radius, obj.rotation, size)
        color = np.asarray(COLOR_RGB[obj.color], np.float32) / 255.0
        pattern = texture_pattern(obj.texture, rng, size)[..., None]
        surface = color * (1.0 - pattern) + shade_of(color) * pattern
        pixels = np.where(inside[..., None], surface, pixels)
        classes[inside] = segmentation_class_id(obj.shape)
        owner[inside] = index
    # A little sensor noise, so that flat regions are not trivially identical between images.
    pixels = pixels + rng.normal(0.0, 0.015, pixels.shape).astype(np.float32)
    image = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
    visible = tuple(int((owner == i).sum()) for i in range(len(scene.objects)))
    return Rendered(image, classes, visible)


def shape_label(scene: Scene, rendered: Rendered) -> str | None:
    """The classification label of an image: the shape owning the most pixels."""
    dominant = rendered.dominant_object()
    return None if dominant is None else scene.objects[dominant].shape
