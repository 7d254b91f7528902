"""Zero-shot classification and segmentation: Triton computes the embeddings, numpy (`service.gateway.zeroshot`) the
rest.

Label prompts go through the embedder, so their text embeddings come from the Redis cache after the first request
(per tenant and adapter version, like every cached vector). Classification embeds images as `/v1/embed/image`
does (CLS1, cached). Segmentation asks Triton for the MaskCLIP value-path tokens of the image (whole) or of each
window (slide) and is not cached: its features are megabytes per window and rarely repeat.

Segmentation geometry is the model library's (`training.tipsv2.windows`, `preprocess.resize_short_side`). In slide
mode the short side is resized to the window and every window is square, so each one is a served resolution. In
whole mode the image is resized to window x window: for square images this is exactly the official protocol; for
other aspect ratios the official code would run a non-square grid, which the served image stage does not take.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from service.gateway import zeroshot
from service.gateway.adapters.registry import ResolvedAdapter
from service.gateway.core.config import LimitSettings
from service.gateway.core.errors import ErrorKind, GatewayError, invalid
from service.gateway.core.metrics import Metrics
from service.gateway.embedder import Embedder
from service.gateway.inference.backend import InferenceBackend, ServedModelInfo
from service.gateway.inputs import image_error
from training.tipsv2.decoding import ImageDecodeError, decode_image
from training.tipsv2.preprocess import resize_short_side
from training.tipsv2.prompts import TCL_TEMPLATES
from training.tipsv2.windows import Window, short_side_size, sliding_windows

SegmentMode = Literal["whole", "slide"]


@dataclass
class LabelVectors:
    vectors: np.ndarray  # (C, D) unit vectors
    prompts: int
    cached: int


@dataclass
class Classifications:
    probabilities: np.ndarray  # (N, C)
    resolution: int
    temperature: float
    cached_images: int
    labels: LabelVectors


@dataclass
class Segmentation:
    label_map: np.ndarray  # (H, W) int64 indices into the labels
    png: bytes  # the label map as a grayscale PNG (8-bit up to 256 labels, else 16-bit)
    shares: np.ndarray  # (C,)
    window: int
    stride: int | None
    windows: int
    labels: LabelVectors


class Recognizer:
    def __init__(self, backend: InferenceBackend, embedder: Embedder, metrics: Metrics, limits: LimitSettings) -> None:
        self.backend = backend
        self.embedder = embedder
        self.metrics = metrics
        self.limits = limits

    async def label_vectors(
        self, tenant: str, labels: list[str], templates: list[str] | None, adapter: ResolvedAdapter | None
    ) -> LabelVectors:
        templates = list(templates or TCL_TEMPLATES)
        prompts = [template.format(label) for label in labels for template in templates]
        result = await self.embedder.embed_texts(tenant, prompts, adapter)
        vectors = zeroshot.label_embeddings(result.vectors, len(labels), len(templates))
        return LabelVectors(vectors, len(prompts), result.cached)

    async def classify(
        self,
        tenant: str,
        images: list[bytes],
        labels: list[str],
        templates: list[str] | None,
        adapter: ResolvedAdapter | None,
        resolution: int | None,
        temperature: float | None = None,
    ) -> Classifications:
        """`temperature`: None is the model's own."""
        served = await self.backend.served_model()
        temperature = served.temperature if temperature is None else temperature
        label_vectors = await self.label_vectors(tenant, labels, templates, adapter)
        embedded = await self.embedder.embed_images(tenant, images, adapter, resolution, with_patches=False)
        started = time.perf_counter()
        probabilities = zeroshot.classify(embedded.cls1, label_vectors.vectors, temperature)
        self._observe("classify", started, len(labels))
        resolution = embedded.grid * served.patch_size
        return Classifications(probabilities, resolution, temperature, embedded.cached, label_vectors)

    async def segment(
        self,
        tenant: str,
        image_bytes: bytes,
        labels: list[str],
        templates: list[str] | None,
        adapter: ResolvedAdapter | None,
        mode: SegmentMode,
        window: int | None,
        stride: int | None,
    ) -> Segmentation:
        if mode == "whole" and stride is not None:
            raise invalid(
                "stride applies to mode=slide only; whole mode runs one window",
                code="stride_without_slide",
                param="stride",
            )
        served = await self.backend.served_model()
        side = self._window(served, window)
        step = self._stride(side, stride) if mode == "slide" else None
        image = await asyncio.to_thread(self._decode, image_bytes)
        self._check_work(len(labels), image.height * image.width)
        canvas, windows = self._plan(image, side, step)
        self._check_work(len(labels), canvas[0] * canvas[1])
        crops = await asyncio.to_thread(self._crops, image, side, windows)
        label_vectors = await self.label_vectors(tenant, labels, templates, adapter)
        adapter_id = adapter.id_for("image") if adapter else ""
        dense = await self.backend.embed_image(crops, [adapter_id] * len(crops), ("dense_tokens",))
        started = time.perf_counter()
        grid = side // served.patch_size
        label_map = await asyncio.to_thread(
            self._label_map, dense["dense_tokens"], (grid, grid), label_vectors.vectors, windows, canvas, image
        )
        shares = zeroshot.pixel_shares(label_map, len(labels))
        png = await asyncio.to_thread(zeroshot.encode_label_png, label_map, len(labels))
        self._observe("segment", started, len(labels))
        return Segmentation(label_map, png, shares, side, step, len(crops), label_vectors)

    @staticmethod
    def _label_map(
        dense: np.ndarray,
        grid: tuple[int, int],
        label_vectors: np.ndarray,
        windows: list[Window] | None,
        canvas: tuple[int, int],
        image: Image.Image,
    ) -> np.ndarray:
        maps = zeroshot.cosine_maps(dense, grid, label_vectors)
        size = (image.height, image.width)
        if windows is None:
            # softmax is monotonic per pixel: the argmax of the upsampled cosine map is the argmax of its softmax
            return zeroshot.label_map(maps[0], size)
        return zeroshot.label_map(zeroshot.slide_probabilities(maps, windows, canvas), size)

    def _plan(self, image: Image.Image, side: int, stride: int | None) -> tuple[tuple[int, int], list[Window] | None]:
        """The canvas the windows tile (the resized image) and the windows; None in whole mode. Checked before any
        resize: an extreme aspect ratio must be refused, not allocated."""
        if stride is None:
            return (side, side), None
        canvas = short_side_size(image.height, image.width, side)
        # As many as `sliding_windows` would list, counted before listing them (an extreme aspect ratio needs millions)
        count = math.prod(max(size - side + stride - 1, 0) // stride + 1 for size in canvas)
        if count > self.limits.max_segment_windows:
            raise invalid(
                f"slide mode needs {count} windows for this image and stride; at most "
                f"{self.limits.max_segment_windows} (raise the stride or use whole mode)",
                code="too_many_windows",
                param="stride",
            )
        return canvas, sliding_windows(*canvas, side, stride)

    @staticmethod
    def _crops(image: Image.Image, side: int, windows: list[Window] | None) -> np.ndarray:
        """uint8 (n, side, side, 3) inputs for Triton: the squashed image (whole) or the windows' crops (slide)."""
        if windows is None:
            square = image if image.size == (side, side) else image.resize((side, side), Image.Resampling.BICUBIC)
            return np.asarray(square, dtype=np.uint8)[None]
        resized = np.asarray(resize_short_side(image, side), dtype=np.uint8)
        return np.stack([resized[w.top : w.bottom, w.left : w.right] for w in windows])

    def _decode(self, data: bytes) -> Image.Image:
        """At full size (no JPEG draft): the label map has the displayed image's size."""
        try:
            return decode_image(data, self.limits.max_image_pixels)
        except ImageDecodeError as exc:
            raise image_error(exc, "image", "image") from exc

    def _check_work(self, labels: int, pixels: int) -> None:
        if labels * pixels > self.limits.max_segment_work:
            raise GatewayError(
                ErrorKind.PAYLOAD_TOO_LARGE,
                f"{labels} labels x {pixels} pixels exceeds the segmentation budget of "
                f"{self.limits.max_segment_work}; send fewer labels or a smaller image",
                code="segmentation_too_large",
                param="labels",
            )

    @staticmethod
    def _window(served: ServedModelInfo, window: int | None) -> int:
        if window is None:
            return served.default_resolution
        if window not in served.resolutions:
            raise invalid(
                f"window {window} is not a served resolution; choose one of {list(served.resolutions)}",
                code="unsupported_resolution",
                param="window",
            )
        return window

    @staticmethod
    def _stride(side: int, stride: int | None) -> int:
        if stride is None:
            return side * 3 // 4
        if not 1 <= stride <= side:
            raise invalid(f"stride must lie in [1, {side}] (the window)", code="invalid_stride", param="stride")
        return stride

    def _observe(self, task: str, started: float, labels: int) -> None:
        self.metrics.zeroshot_duration.labels(task).observe(time.perf_counter() - started)
        self.metrics.zeroshot_labels.labels(task).observe(labels)
