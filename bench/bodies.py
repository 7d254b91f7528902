"""Request bodies for the HTTP scenarios: texts or encoded images, distinct per request (cache misses) or drawn
from a small pool (cache hits), optionally naming adapters in rotation. The same spec and seed give the same bodies,
so our gateway and the naive server can be sent identical requests."""

from __future__ import annotations

import base64
import io
import json
import random
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

_VOCABULARY = (
    "a photo of the red blue green small large round square dog cat car tree house street river boat bird "
    "flower sky road shop shoe bag chair table lamp window door mountain beach city night morning bright dark "
    "old new wooden metal glass striped spotted tall short"
)
WORDS = _VOCABULARY.split()


@dataclass(frozen=True)
class Bodies:
    kind: Literal["text", "image", "none"]
    per_request: int = 1  # texts or images per request
    words: int = 8  # per text (the tokenizer truncates at the model's 64 tokens)
    unique: bool = True  # False: `pool` distinct bodies repeated round-robin (the cache-hit path)
    pool: int = 16
    image_size: tuple[int, int] = (320, 240)  # (width, height) of the encoded source image, resized by the server
    image_format: str = "JPEG"
    seed: int = 0  # give each cell its own: a later cell must not hit what an earlier one cached
    adapters: tuple[str, ...] = ()  # adapter references, one per request in rotation ("" = none)
    fields: dict[str, Any] = field(default_factory=dict)  # extra JSON fields, e.g. {"resolution": 448}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Bodies:
        tuples = {"image_size", "adapters"}
        return cls(**{k: tuple(v) if k in tuples else v for k, v in raw.items()})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_bodies(spec: Bodies, count: int, share: int = 0) -> list[bytes]:
    """`count` JSON bodies; `share` (the load process's index) keeps processes of one cell from sending the same."""
    if spec.kind == "none":
        return [b""] * count
    distinct = count if spec.unique else min(spec.pool, count)
    rng = random.Random(spec.seed * 7919 + share)
    make = _texts if spec.kind == "text" else _images
    contents = [make(spec, rng, f"{spec.seed}.{share}.{i}") for i in range(distinct)]
    bodies = []
    for i in range(count):
        body: dict[str, Any] = {**spec.fields}
        body["input" if spec.kind == "text" else "images"] = contents[i % distinct]
        if spec.adapters and spec.adapters[i % len(spec.adapters)]:
            body["adapter"] = spec.adapters[i % len(spec.adapters)]
        bodies.append(json.dumps(body).encode())
    return bodies


def _texts(spec: Bodies, rng: random.Random, tag: str) -> list[str]:
    # The tag makes each text distinct; the words make its length what the cell asks for.
    return [" ".join([*rng.choices(WORDS, k=max(spec.words - 1, 0)), f"n{tag}.{j}"]) for j in range(spec.per_request)]


def _images(spec: Bodies, rng: random.Random, tag: str) -> list[str]:
    return [encoded_image(spec.image_size, rng.randrange(1 << 30), spec.image_format) for _ in range(spec.per_request)]


def encoded_image(size: tuple[int, int], seed: int, image_format: str = "JPEG") -> str:
    """A photo-like image (smooth colour blobs and a little noise), base64-encoded; distinct per seed."""
    from PIL import Image

    width, height = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0.1, 0.4) * max(size)
        image += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None] * rng.uniform(0, 255, 3)
    image += rng.normal(0, 4, image.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buffer, format=image_format, quality=90)
    return base64.b64encode(buffer.getvalue()).decode()
