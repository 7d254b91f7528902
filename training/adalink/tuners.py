"""What a task trains, one kind per method, behind one interface (so the comparison trains all of them alike):

- `adalink`: an AdaLink per adapted modality on the input side; the base is shared, frozen and untouched;
- `lora`: LoRA on every attention projection of the adapted towers (`lora.py`), in a copy of the base;
- `full`: every weight of the adapted towers, in a copy of the base (the zero-shot temperature stays fixed).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from training.adalink.adapted import AdaptedTIPSv2, freeze
from training.adalink.lora import add_lora
from training.tipsv2.model import TIPSv2

METHODS = ("adalink", "lora", "full")


@dataclass
class Tuned:
    method: str
    modalities: tuple[str, ...]  # the towers whose computation training changes
    model: TIPSv2 | AdaptedTIPSv2  # both have the zero-shot API: encode_image, encode_text, temperature, cfg
    trainable: list[nn.Parameter]

    @property
    def num_trainable(self) -> int:
        return sum(p.numel() for p in self.trainable)


def towers(model: TIPSv2, modalities: tuple[str, ...]) -> list[nn.Module]:
    return [model.visual if m == "image" else model.text for m in modalities]


def prepare(
    method: str,
    base: TIPSv2,
    modalities: tuple[str, ...],
    rank: int = 16,
    activation: str = "gelu_tanh",
    seed: int = 0,
) -> Tuned:
    """The trainable model of `method` on top of `base`; `base` itself is frozen and never modified."""
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
    if not modalities:
        raise ValueError("adapt at least one modality (image, text)")
    generator = torch.Generator().manual_seed(seed)  # initialised on the CPU: the same adapters on any device
    freeze(base)
    if method == "adalink":
        adapted = AdaptedTIPSv2.fresh(base, modalities, rank, activation, generator)
        adapted.adapters.to(next(base.parameters()).device)
        return Tuned(method, modalities, adapted, list(adapted.adapters.parameters()))
    model = freeze(copy.deepcopy(base))
    if method == "lora":
        return Tuned(method, modalities, model, add_lora(model, modalities, rank, generator=generator))
    params = [p for tower in towers(model, modalities) for p in tower.parameters()]
    for param in params:
        param.requires_grad_(True)
    return Tuned(method, modalities, model, params)
