"""A deterministic in-process backend for unit tests of the API layer (never used by integration tests).

Vectors are a fixed random projection of the inputs, so equal inputs give equal vectors and different inputs
different ones; adapters add a per-adapter offset, so tests can tell base from adapted results.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from service.gateway.core.errors import ErrorKind, GatewayError
from service.gateway.inference.backend import ServedModelInfo

FAKE_MODEL = ServedModelInfo(
    model_name="tipsv2-fake",
    model_id="fake0000",
    embed_dim=16,
    text_len=64,
    patch_size=14,
    resolutions=(56, 112),
    temperature=0.01,
    text_max_batch=8,
    image_max_batch=4,
)


class FakeBackend:
    def __init__(
        self,
        served: ServedModelInfo = FAKE_MODEL,
        known_adapters: set[str] | Callable[[str], bool] | None = None,
    ) -> None:
        """`known_adapters`: the adapter ids it serves, or a predicate (e.g. "the file is in this store")."""
        self.served = served
        self.known_adapters = known_adapters if known_adapters is not None else set()
        self.up = True
        self.calls = 0
        rng = np.random.default_rng(0)
        self._text_proj = rng.standard_normal((served.text_len, served.embed_dim)).astype(np.float32)
        self._pixel_proj = rng.standard_normal((3, served.embed_dim)).astype(np.float32)

    def _check(self, adapters: list[str]) -> None:
        if not self.up:
            raise GatewayError(
                ErrorKind.BACKEND_UNAVAILABLE,
                "inference server unavailable: fake is down",
                code="triton_unavailable",
                retry_after=1,
            )
        known = self.known_adapters
        for adapter in adapters:
            if adapter and not (known(adapter) if callable(known) else adapter in known):
                raise GatewayError(ErrorKind.NOT_FOUND, f"unknown adapter {adapter!r}", code="adapter_not_found")
        self.calls += 1

    def _offset(self, adapter: str) -> np.ndarray:
        if not adapter:
            return np.zeros(self.served.embed_dim, np.float32)
        seed = int.from_bytes(hashlib.sha256(adapter.encode()).digest()[:4], "little")
        return np.asarray(np.random.default_rng(seed).standard_normal(self.served.embed_dim), dtype=np.float32)

    async def served_model(self) -> ServedModelInfo:
        self._check([])
        self.calls -= 1
        return self.served

    async def ready(self) -> bool:
        return self.up

    async def embed_text(self, ids: np.ndarray, adapters: list[str]) -> np.ndarray:
        self._check(adapters)
        base = np.sin(ids.astype(np.float32) * 0.37) @ self._text_proj
        rows = [b + self._offset(a) for b, a in zip(base, adapters, strict=True)]
        return np.asarray(np.stack(rows), dtype=np.float32)

    async def embed_image(
        self, pixels: np.ndarray, adapters: list[str], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        self._check(adapters)
        p = self.served.patch_size
        n, s = pixels.shape[0], pixels.shape[1]
        g = s // p
        patches = pixels.reshape(n, g, p, g, p, 3).mean(axis=(2, 4)).reshape(n, g * g, 3) / 255.0
        tokens = (patches @ self._pixel_proj).astype(np.float32)
        tokens += np.stack([self._offset(a) for a in adapters])[:, None, :]
        full = {"cls1": tokens.mean(1), "cls2": tokens.max(1), "patch_tokens": tokens, "dense_tokens": tokens * 0.5}
        return {name: full[name].astype(np.float32) for name in outputs}

    async def close(self) -> None:
        return None
