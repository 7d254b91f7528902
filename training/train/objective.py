"""The recipe's objective: which losses are on, with which weights, composed from one config section.

`Objective` owns the loss modules (and so their teacher centres, which are training state) and turns a step's
student, teacher and distillation outputs into the dict of named `*_loss` terms that the loop sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

from training.losses import (
    ContrastiveLoss,
    DINOLoss,
    IBOTPatchLoss,
    KoLeoLoss,
    PatchDistillationLoss,
    TokenSelection,
)
from training.train.student import StudentOutputs
from training.train.teacher import TeacherOutputs


@dataclass(frozen=True)
class LossSpec:
    """Weights (0 turns a loss off) and settings of each term; mirrors the `losses` config section."""

    contrastive_cls1: dict[str, Any] = field(default_factory=lambda: {"weight": 1.0})
    contrastive_cls2: dict[str, Any] = field(default_factory=lambda: {"weight": 1.0})
    dino: dict[str, Any] = field(default_factory=lambda: {"weight": 1.0})
    ibot: dict[str, Any] = field(default_factory=lambda: {"weight": 1.0})
    koleo: dict[str, Any] = field(default_factory=lambda: {"weight": 0.1})
    patch_distill: dict[str, Any] = field(default_factory=lambda: {"weight": 0.0})

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LossSpec:
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown losses: {sorted(unknown)}")
        return cls(**raw)

    def on(self, name: str) -> bool:
        return float(getattr(self, name).get("weight", 0.0)) > 0

    def options(self, name: str, *drop: str) -> dict[str, Any]:
        return {k: v for k, v in getattr(self, name).items() if k not in drop}


class Objective(nn.Module):
    def __init__(self, spec: LossSpec, num_prototypes: int) -> None:
        super().__init__()
        self.spec = spec
        on = spec.on
        self.contrastive_cls1 = (
            ContrastiveLoss("contrastive_cls1", **spec.options("contrastive_cls1")) if on("contrastive_cls1") else None
        )
        self.contrastive_cls2 = (
            ContrastiveLoss("contrastive_cls2", **spec.options("contrastive_cls2")) if on("contrastive_cls2") else None
        )
        self.dino = DINOLoss(num_prototypes, **spec.options("dino")) if on("dino") else None
        self.ibot = IBOTPatchLoss(num_prototypes, **spec.options("ibot")) if on("ibot") else None
        self.koleo = KoLeoLoss(**spec.options("koleo")) if on("koleo") else None
        self.patch_distill = (
            PatchDistillationLoss(**spec.options("patch_distill", "teacher", "teacher_variant"))
            if on("patch_distill")
            else None
        )

    @property
    def needs_text(self) -> bool:
        return self.contrastive_cls1 is not None or self.contrastive_cls2 is not None

    def select_tokens(self, masks: torch.Tensor) -> TokenSelection | None:
        """The iBOT tokens of this step from the (G, B, N) masks, or None when iBOT is off."""
        return None if self.ibot is None else self.ibot.select(masks.flatten(0, 1))

    def forward(
        self,
        student: StudentOutputs,
        teacher: TeacherOutputs,
        selection: TokenSelection | None,
        teacher_temp: float,
        dino_token: str = "cls1",
        distill_target: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        if self.contrastive_cls1 is not None:
            terms |= self.contrastive_cls1(student.cls1[0], student.text_cls1, student.temperature)
        if self.contrastive_cls2 is not None:
            terms |= self.contrastive_cls2(student.cls2[0], student.text_cls2, student.temperature)
        if self.dino is not None:
            assert student.dino_logits is not None and teacher.dino_logits is not None
            terms |= self.dino(student.dino_logits, self.dino.teacher_probs(teacher.dino_logits, teacher_temp))
        if self.ibot is not None:
            assert selection is not None and student.ibot_logits is not None and teacher.ibot_logits is not None
            probs = self.ibot.teacher_probs(teacher.ibot_logits, teacher_temp)
            terms |= self.ibot(student.ibot_logits, probs, selection)
        if self.koleo is not None:
            terms |= self.koleo(student.dino_tokens(dino_token))
        if self.patch_distill is not None:
            assert student.distill_patches is not None and distill_target is not None
            terms |= self.patch_distill(student.distill_patches, distill_target)
        return terms
