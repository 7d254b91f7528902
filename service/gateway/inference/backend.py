"""What the gateway needs from an inference backend, independent of Triton."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

IMAGE_OUTPUTS = ("cls1", "cls2", "patch_tokens", "dense_tokens")


@dataclass(frozen=True)
class ServedModelInfo:
    """The served model, as the Triton ensembles describe it in their parameters."""

    model_name: str
    model_id: str  # weights digest: the model version in cache keys
    embed_dim: int
    text_len: int
    patch_size: int
    resolutions: tuple[int, ...]
    temperature: float
    text_max_batch: int = 64
    image_max_batch: int = 8

    @property
    def default_resolution(self) -> int:
        return self.resolutions[0]


class InferenceBackend(Protocol):
    async def served_model(self) -> ServedModelInfo:
        """The served model; raises GatewayError(BACKEND_UNAVAILABLE) when it cannot be reached."""
        ...

    async def ready(self) -> bool: ...

    async def embed_text(self, ids: np.ndarray, adapters: list[str]) -> np.ndarray:
        """(N, L) int32 ids and one adapter id per row ("" = base) -> (N, D) float32 raw embeddings."""
        ...

    async def embed_image(
        self, pixels: np.ndarray, adapters: list[str], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        """(N, S, S, 3) uint8 -> the requested image outputs (cls1, cls2, patch_tokens, dense_tokens)."""
        ...

    async def close(self) -> None: ...
