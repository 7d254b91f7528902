"""Valid adapter files for the fake backend's model (width 16)."""

from __future__ import annotations

import numpy as np

from service.gateway.inference.fake import FAKE_MODEL
from training.adalink.format import adapter_bytes, build_metadata


def fake_adapter(seed: int = 0, modalities: tuple[str, ...] = ("image", "text"), base_hash: str = "") -> bytes:
    rng = np.random.default_rng(seed)
    dim, rank = FAKE_MODEL.embed_dim, 4
    tensors = {}
    for modality in modalities:
        tensors[f"{modality}.down"] = rng.standard_normal((rank, dim)).astype(np.float32)
        tensors[f"{modality}.up"] = rng.standard_normal((dim, rank)).astype(np.float32)
    meta = build_metadata("tipsv2-fake", base_hash or FAKE_MODEL.model_id, modalities, rank, dim, "relu", "unit")
    return adapter_bytes(tensors, meta)
