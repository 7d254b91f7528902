"""What the gateway needs from an inference backend, independent of Triton."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from training.contracts.served import OUTPUTS, ServedModel

IMAGE_OUTPUTS = OUTPUTS["image"]


@dataclass(frozen=True)
class ServedModelInfo(ServedModel):
    """The served model, as the Triton models describe it in their parameters, and their max batch sizes."""

    text_max_batch: int = 64
    image_max_batch: int = 8


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
