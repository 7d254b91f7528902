"""Valid adapter files for the fake backend's model (width 16)."""

from __future__ import annotations

from service.gateway.inference.fake import FAKE_MODEL
from training.adalink.samples import random_adapter


def fake_adapter(seed: int = 0, modalities: tuple[str, ...] = ("image", "text"), base_hash: str = "") -> bytes:
    return random_adapter(
        base_hash or FAKE_MODEL.model_id,
        FAKE_MODEL.embed_dim,
        seed=seed,
        modalities=modalities,
        down_scale=1.0,
        up_scale=1.0,
        base_model="tipsv2-fake",
        task="unit",
    )
