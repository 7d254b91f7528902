"""A frozen TIPSv2 with AdaLink adapters between its embedding stages and its trunks: the training-side twin of
the served model (`service/triton/models/tipsv2_stages*.py`).

Where the adapter goes, per modality (exactly where serving applies it):
- text: on `text.embed(ids)` = token embedding x sqrt(D) + sinusoidal positions, every position (padding included:
  padded keys are masked in every block and left out of the pooled mean, so what the adapter does to them cannot
  reach the output);
- image: on `visual.embed(pixels)` = [CLS1 + pos, CLS2, patch_i + pos_i], ALL tokens. The two CLS tokens are
  constants of the base model, so on them the adapter learns a per-task constant shift of the two summary tokens
  (a learned prompt, in effect) while on the patches it is a per-token low-rank map of their content.
The base model's parameters are frozen (`requires_grad=False`) and never written; `checksum.state_checksum` of the
base is the same before and after training (the tests and `tipsv2 adapt` check it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar, cast

import torch
from torch import nn

from training.adalink.module import AdaLink
from training.contracts.adapter_file import load_adapter_arrays, validate_adapter
from training.tipsv2.configs import ModelCfg
from training.tipsv2.model import TIPSv2
from training.tipsv2.vision import ImageFeatures

MODALITIES = ("image", "text")


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def freeze(module: ModuleT) -> ModuleT:
    for param in module.parameters():
        param.requires_grad_(False)
    return module.eval()


class AdaptedTIPSv2(nn.Module):
    """`base` (frozen) + one optional AdaLink per modality; the zero-shot API of TIPSv2 (encode_image, encode_text,
    temperature, cfg), so `training.tipsv2.zeroshot` and the evaluation code take it as a model."""

    def __init__(self, base: TIPSv2, adapters: Mapping[str, AdaLink]) -> None:
        super().__init__()
        unknown = set(adapters) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}; adapters exist for {', '.join(MODALITIES)}")
        for name, adapter in adapters.items():
            if adapter.dim != base.cfg.embed_dim:
                raise ValueError(f"{name} adapter has width {adapter.dim}, the base model {base.cfg.embed_dim}")
        self.base = freeze(base)
        self.adapters = nn.ModuleDict(dict(adapters))

    @classmethod
    def fresh(
        cls,
        base: TIPSv2,
        modalities: tuple[str, ...],
        rank: int,
        activation: str,
        generator: torch.Generator | None = None,
    ) -> AdaptedTIPSv2:
        """New adapters (zero `up`: the model computes exactly what `base` computes) for `modalities`."""
        adapters = {}
        for modality in modalities:
            adapter = AdaLink(base.cfg.embed_dim, rank, activation)
            adapter.reset_parameters(generator)
            adapters[modality] = adapter
        return cls(base, adapters)

    @property
    def cfg(self) -> ModelCfg:
        return self.base.cfg

    @property
    def temperature(self) -> torch.Tensor:
        return self.base.temperature

    def train(self, mode: bool = True) -> AdaptedTIPSv2:
        super().train(mode)
        self.base.eval()  # the base stays in inference mode whatever the adapters do
        return self

    def _adapt(self, modality: str, tokens: torch.Tensor) -> torch.Tensor:
        return self.adapters[modality](tokens) if modality in self.adapters else tokens

    def image_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> the adapted sequence the first block sees, (B, 2 + N, D)."""
        return self._adapt("image", self.base.visual.embed(pixels))

    def encode_image(self, pixels: torch.Tensor) -> ImageFeatures:
        visual = self.base.visual
        return visual.split(visual.trunk(self.image_tokens(pixels)))

    def text_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> the adapted sequence the first block sees, (B, L, D)."""
        return self._adapt("text", self.base.text.embed(ids))

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.base.text.trunk(self.text_tokens(ids), self.base.text.token_mask(ids))

    @classmethod
    def from_adapter_file(cls, base: TIPSv2, data: bytes, base_hash: str | None = None) -> AdaptedTIPSv2:
        """`base` with the adapters of validated adapter-file bytes (`format.validate_adapter` runs first)."""
        info = validate_adapter(data, base_hash=base_hash, dim=base.cfg.embed_dim)
        arrays = {k: torch.from_numpy(v) for k, v in load_adapter_arrays(data).items()}
        adapters = {
            m: AdaLink.from_tensors(arrays[f"{m}.down"], arrays[f"{m}.up"], info.activation) for m in info.modalities
        }
        return cls(base, adapters)

    def adapter_arrays(self) -> dict[str, torch.Tensor]:
        """The adapter file's tensors: `{modality}.down` (r, D) and `{modality}.up` (D, r), float32, on the CPU."""
        out = {}
        for modality, adapter in self.adapters.items():
            down, up = cast(AdaLink, adapter).tensors()
            out[f"{modality}.down"], out[f"{modality}.up"] = down.float().cpu(), up.float().cpu()
        return out
