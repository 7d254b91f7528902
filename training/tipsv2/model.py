"""TIPSv2: the image and text towers plus the zero-shot temperature, and thin named factories."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch
from torch import nn

from training.tipsv2.configs import ModelCfg, get_model_config
from training.tipsv2.text import TextEncoder
from training.tipsv2.vision import ImageFeatures, VisionTransformer


class ZeroShotModel(Protocol):
    """The zero-shot API that TIPSv2 and its adapted forms (AdaLink, LoRA, fine-tuned copies) share."""

    @property
    def cfg(self) -> ModelCfg: ...

    @property
    def temperature(self) -> torch.Tensor: ...

    def encode_image(self, pixels: torch.Tensor) -> ImageFeatures: ...

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def eval(self) -> object: ...


class TIPSv2(nn.Module):
    def __init__(self, cfg: ModelCfg) -> None:
        super().__init__()
        self.cfg = cfg
        self.visual = VisionTransformer(cfg.vision_cfg)
        self.text = TextEncoder(cfg.text_cfg)
        # The official text checkpoint stores `temperature` (not a log-scale); zero-shot uses softmax(cos / t).
        self.temperature = nn.Parameter(torch.tensor(float(cfg.temperature)), requires_grad=False)

    def init_weights(self, seed: int = 0) -> TIPSv2:
        generator = torch.Generator().manual_seed(seed)
        self.visual.init_weights(generator)
        self.text.init_weights(generator)
        return self

    def encode_image(self, pixels: torch.Tensor) -> ImageFeatures:
        features: ImageFeatures = self.visual(pixels)
        return features

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        embeddings: torch.Tensor = self.text(ids)
        return embeddings


def create_model(name: str, device: str | torch.device | None = None, seed: int | None = None) -> TIPSv2:
    """Builds a registered variant (`tipsv2-b14`, `b14`, ...). `device="meta"` builds without allocating."""
    cfg = get_model_config(name)
    with torch.device(device or "cpu"):
        model = TIPSv2(cfg)
    if seed is not None:
        model.init_weights(seed)
    return model


def tipsv2_tiny(**kwargs: object) -> TIPSv2:
    return create_model("tipsv2-tiny", **kwargs)  # type: ignore[arg-type]


def tipsv2_b14(**kwargs: object) -> TIPSv2:
    return create_model("tipsv2-b14", **kwargs)  # type: ignore[arg-type]


def tipsv2_l14(**kwargs: object) -> TIPSv2:
    return create_model("tipsv2-l14", **kwargs)  # type: ignore[arg-type]


def tipsv2_so400m14(**kwargs: object) -> TIPSv2:
    return create_model("tipsv2-so400m14", **kwargs)  # type: ignore[arg-type]


def tipsv2_g14(**kwargs: object) -> TIPSv2:
    return create_model("tipsv2-g14", **kwargs)  # type: ignore[arg-type]
