"""Texts for a scene: noisy web-style alt-text and synthetic captions at three granularities.

- `alt`: what web alt-text is like: coarse, partial (names at most the main object) and noisy (file names, shop
  words, unrelated words), sometimes saying nothing about the pixels at all.
- `keywords`: short keywords, the shape nouns and the background: "circle, star, grass".
- `sentence`: one sentence naming every object with its size and colour.
- `dense`: every object with size, texture, colour, shape and position, plus the background.

Only `alt` is random beyond the scene (the synthetic captions are exact descriptions, as a captioning model's would
ideally be), so a scene's synthetic captions are a pure function of the scene.
"""

from __future__ import annotations

import numpy as np

from training.data.vocabulary import ALT_FILLERS, OBJECTS, STYLES
from training.data.world import Scene, SceneObject


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _by_visibility(scene: Scene, visible_pixels: tuple[int, ...]) -> list[SceneObject]:
    """The objects that can be seen, most visible first (the order a describer would mention them in)."""
    order = sorted(range(len(scene.objects)), key=lambda i: -visible_pixels[i])
    return [scene.objects[i] for i in order if visible_pixels[i] > 0]


def keywords_caption(scene: Scene, visible_pixels: tuple[int, ...]) -> str:
    """Tags: the shape nouns and the background, no attributes ("circle, star, grass").

    Without colours, a tag list cannot be matched to its image by colour alone, the easiest shortcut in this world.
    """
    return ", ".join([*(o.shape for o in _by_visibility(scene, visible_pixels)), scene.background])


def sentence_caption(scene: Scene, visible_pixels: tuple[int, ...]) -> str:
    objects = _by_visibility(scene, visible_pixels)
    if not objects:
        return f"an empty {scene.background} surface."
    return f"{_join([f'a {o.size} {o.color} {o.shape}' for o in objects])} on {scene.background}."


def dense_caption(scene: Scene, visible_pixels: tuple[int, ...]) -> str:
    objects = _by_visibility(scene, visible_pixels)
    described = [f"a {o.size} {o.texture} {o.color} {o.shape} at the {o.position}" for o in objects]
    if not described:
        return f"a plain {scene.background} background with nothing on it."
    return f"a {scene.background} background with {_join(described)}."


def alt_text(scene: Scene, visible_pixels: tuple[int, ...], rng: np.random.Generator) -> str:
    """Web-style alt-text: at most the main object, often without its colour, wrapped in noise."""
    filler = str(rng.choice(ALT_FILLERS))
    number = int(rng.integers(100, 10_000))
    objects = _by_visibility(scene, visible_pixels)
    if not objects or rng.random() < 0.15:  # alt-text that says nothing about the image
        return str(rng.choice([f"img_{number}.png", f"{filler} {number}", f"{rng.choice(OBJECTS)} {filler}"]))
    main = objects[0]
    named = f"{main.color} {main.shape}" if rng.random() < 0.5 else main.shape
    forms = [
        f"{named} {filler}",
        f"{named} {filler} {number}",
        f"{rng.choice(STYLES)} {named}",
        f"{filler} {rng.choice(OBJECTS)} {named}",
        f"{named} on {scene.background} {filler}",
    ]
    return str(forms[int(rng.integers(len(forms)))])


def scene_captions(scene: Scene, visible_pixels: tuple[int, ...], rng: np.random.Generator) -> dict[str, str]:
    """Every text of a scene, keyed by source name (`vocabulary.CAPTION_SOURCES`)."""
    return {
        "alt": alt_text(scene, visible_pixels, rng),
        "keywords": keywords_caption(scene, visible_pixels),
        "sentence": sentence_caption(scene, visible_pixels),
        "dense": dense_caption(scene, visible_pixels),
    }
