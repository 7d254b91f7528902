"""Turns validated inputs into embeddings: tokenise or decode, look up the cache, call the backend for the misses,
fill the cache. Routes stay thin; this is where a request's work happens."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from service.gateway.adapters.registry import ResolvedAdapter
from service.gateway.cache import EmbeddingCache, Quota, cache_key, content_hash, decode_vector, encode_vector
from service.gateway.core.config import LimitSettings
from service.gateway.core.errors import ErrorKind, GatewayError, invalid
from service.gateway.core.metrics import Metrics
from service.gateway.inference.backend import InferenceBackend, ServedModelInfo
from service.gateway.inputs import image_error
from training.tipsv2.decoding import ImageDecodeError, decode_image, rules_tag
from training.tipsv2.preprocess import resize_uint8
from training.tipsv2.tokenizer import Tokenizer


@dataclass
class TextResult:
    vectors: np.ndarray  # (N, D) raw float32
    prompt_tokens: int
    cached: int


@dataclass
class ImageResult:
    cls1: np.ndarray  # (N, D)
    cls2: np.ndarray  # (N, D)
    patch_tokens: np.ndarray | None  # (N, g*g, D)
    grid: int
    cached: int


class Embedder:
    def __init__(
        self,
        backend: InferenceBackend,
        cache: EmbeddingCache,
        tokenizer: Tokenizer,
        metrics: Metrics,
        limits: LimitSettings,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.tokenizer = tokenizer
        self.metrics = metrics
        self.limits = limits

    def tokenize(self, texts: list[str], truncate: bool) -> tuple[np.ndarray, np.ndarray]:
        ids, lengths = self.tokenizer(texts)
        for index, text in enumerate(texts):
            if lengths[index] == 0:
                raise invalid(f"input[{index}] has no tokens", code="empty_input", param="input")
            if not truncate and len(self.tokenizer.encode(text)) > self.tokenizer.max_len:
                raise invalid(
                    f"input[{index}] is longer than {self.tokenizer.max_len} tokens and truncate is false",
                    code="input_too_long",
                    param="input",
                )
        return ids, lengths

    async def embed_texts(
        self,
        tenant: str,
        texts: list[str],
        adapter: ResolvedAdapter | None,
        truncate: bool = True,
        quota: Quota | None = None,
    ) -> TextResult:
        """`quota`: the tenant's rate limit, checked in the cache read's round trip (raises when it refuses)."""
        served = await self.backend.served_model()
        ids, lengths = self.tokenize(texts, truncate)
        adapter_id = adapter.id_for("text") if adapter else ""
        keys = [
            cache_key(served.model_id, tenant, adapter_id, "text", "raw", content_hash(row.tobytes())) for row in ids
        ]
        cached = await self.cache.get_many(keys, quota)
        vectors = np.zeros((len(texts), served.embed_dim), dtype=np.float32)
        misses = []
        for i, raw in enumerate(cached):
            if raw is not None and len(raw) == 4 * served.embed_dim:
                vectors[i] = decode_vector(raw)
            else:
                misses.append(i)
        if misses:
            computed = await self.backend.embed_text(ids[misses], [adapter_id] * len(misses))
            vectors[misses] = computed
            await self.cache.set_many({keys[i]: encode_vector(computed[j]) for j, i in enumerate(misses)})
        self._count("text", tenant, len(texts), len(texts) - len(misses))
        return TextResult(vectors, int(lengths.sum()), len(texts) - len(misses))

    async def embed_images(
        self,
        tenant: str,
        images: list[bytes],
        adapter: ResolvedAdapter | None,
        resolution: int | None,
        with_patches: bool,
        quota: Quota | None = None,
    ) -> ImageResult:
        served = await self.backend.served_model()
        resolution = self._resolution(served, resolution)
        grid = resolution // served.patch_size
        D = served.embed_dim
        adapter_id = adapter.id_for("image") if adapter else ""
        options = f"r{resolution}" + ("+patches" if with_patches else "") + "+" + rules_tag(self.limits.jpeg_draft)
        keys = [cache_key(served.model_id, tenant, adapter_id, "image", options, content_hash(data)) for data in images]
        per_item = D * (2 + (grid * grid if with_patches else 0))
        cached = await self.cache.get_many(keys, quota)
        flat = np.zeros((len(images), per_item), dtype=np.float32)
        misses = []
        for i, raw in enumerate(cached):
            if raw is not None and len(raw) == 4 * per_item:
                flat[i] = decode_vector(raw)
            else:
                misses.append(i)
        hits = len(images) - len(misses)
        if misses:
            pixels = await asyncio.to_thread(self._decode_all, [(i, images[i]) for i in misses], resolution)
            outputs = ("cls1", "cls2", "patch_tokens") if with_patches else ("cls1", "cls2")
            result = await self.backend.embed_image(pixels, [adapter_id] * len(misses), outputs)
            parts = [result["cls1"], result["cls2"]]
            if with_patches:
                parts.append(result["patch_tokens"].reshape(len(misses), -1))
            computed = np.concatenate(parts, axis=1)
            flat[misses] = computed
            await self.cache.set_many({keys[i]: encode_vector(computed[j]) for j, i in enumerate(misses)})
        self._count("image", tenant, len(images), hits)
        patches = flat[:, 2 * D :].reshape(len(images), grid * grid, D) if with_patches else None
        return ImageResult(flat[:, :D], flat[:, D : 2 * D], patches, grid, hits)

    def _decode_all(self, items: list[tuple[int, bytes]], resolution: int) -> np.ndarray:
        out = np.empty((len(items), resolution, resolution, 3), dtype=np.uint8)
        min_size = resolution if self.limits.jpeg_draft else None
        for row, (index, data) in enumerate(items):
            try:
                image = decode_image(data, self.limits.max_image_pixels, min_size=min_size)
            except ImageDecodeError as exc:
                raise image_error(exc, f"images[{index}]", "images") from exc
            out[row] = resize_uint8(image, resolution)
        return out

    @staticmethod
    def _resolution(served: ServedModelInfo, resolution: int | None) -> int:
        if resolution is None:
            return served.default_resolution
        if resolution not in served.resolutions:
            raise invalid(
                f"resolution {resolution} is not served; choose one of {list(served.resolutions)}",
                code="unsupported_resolution",
                param="resolution",
            )
        return resolution

    def _count(self, modality: str, tenant: str, items: int, hits: int) -> None:
        self.metrics.items.labels(modality, tenant).inc(items)
        self.metrics.batch_size.labels(modality).observe(items)
        self.metrics.cache_hits.labels(modality, tenant).inc(hits)
        self.metrics.cache_misses.labels(modality, tenant).inc(items - hits)


def model_mismatch(requested: str | None, served: ServedModelInfo) -> GatewayError | None:
    if requested is None or requested == served.model_name:
        return None
    return GatewayError(
        ErrorKind.NOT_FOUND,
        f"model {requested!r} is not served; this gateway serves {served.model_name!r}",
        code="model_not_found",
        param="model",
    )
