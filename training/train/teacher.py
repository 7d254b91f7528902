"""Teachers: the EMA self-distillation teacher (head-only or full) and the frozen patch-distillation teacher.

Head-only EMA (TIPSv2): only the DINO/iBOT heads have EMA copies; the teacher's backbone *is* the student's
(current weights, no gradient). TIPSv2's argument: the image-text contrastive loss already keeps the backbone stable,
so a second, slowly moving backbone is not needed. It saves the backbone copy and its EMA update, and on views the
student saw unmasked the teacher's backbone features are the student's own, so they are reused instead of recomputed.

Full EMA (DINOv2): the teacher also keeps an EMA copy of the image tower and runs it on every global view.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from training.data.pretrain import Batch
from training.tipsv2.checkpoint import load_pretrained
from training.tipsv2.vision import ImageFeatures
from training.train.student import Student, StudentOutputs

EMAMode = Literal["head", "full"]


@dataclass
class TeacherOutputs:
    dino_logits: torch.Tensor | None  # (G, B, K) on the intact global views
    ibot_logits: torch.Tensor | None  # (M, K) at the iBOT-selected tokens


class EMATeacher(nn.Module):
    def __init__(self, student: Student, mode: EMAMode = "head") -> None:
        super().__init__()
        if mode not in ("head", "full"):
            raise ValueError(f"unknown EMA mode {mode!r}: use head (TIPSv2) or full (DINOv2)")
        self.mode = mode
        self.dino_token = student.spec.dino_token
        self.dino_head = copy.deepcopy(student.dino_head)
        shared = student.ibot_head is not None and student.ibot_head is student.dino_head
        self.ibot_head = self.dino_head if shared else copy.deepcopy(student.ibot_head)
        self.backbone = copy.deepcopy(student.model.visual) if mode == "full" else None
        self.requires_grad_(False)

    def ema_pairs(self, student: Student) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(teacher tensors, student tensors) the EMA moves, matched by parameter name."""
        pairs: list[tuple[nn.Module | None, nn.Module | None]] = [
            (self.dino_head, student.dino_head),
            (self.ibot_head, student.ibot_head),
        ]
        if self.backbone is not None:
            pairs.append((self.backbone, student.model.visual))
        teacher: list[torch.Tensor] = []
        source: list[torch.Tensor] = []
        seen: set[int] = set()
        for t_module, s_module in pairs:
            if t_module is None or s_module is None or id(t_module) in seen:
                continue
            seen.add(id(t_module))
            s_params = dict(s_module.named_parameters())
            for name, param in t_module.named_parameters():
                teacher.append(param)
                source.append(s_params[name])
        return teacher, source

    @torch.no_grad()
    def update(self, student: Student, momentum: float) -> None:
        """teacher <- momentum * teacher + (1 - momentum) * student."""
        teacher, source = self.ema_pairs(student)
        if teacher:
            torch._foreach_lerp_(teacher, [s.detach() for s in source], 1.0 - momentum)

    def num_ema_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # `parameters()` counts a shared head once

    @torch.no_grad()
    def features(
        self, student: Student, batch: Batch, student_out: StudentOutputs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher backbone's (dino tokens (G, B, D), patch tokens (G, B, N, D)) on the intact global views."""
        views = batch.global_views
        G, B = views.shape[:2]
        if self.backbone is not None:
            feats = self.backbone(views.flatten(0, 1))
            return self._tokens(feats).reshape(G, B, -1), feats.patch_tokens.reshape(
                G, B, *student_out.patches.shape[2:]
            )
        tokens, patches = [], []
        for g in range(G):
            if batch.masks[g].any():  # the student saw masked patches here: run the backbone on the intact view
                feats = student.model.visual(views[g])
                tokens.append(self._tokens(feats))
                patches.append(feats.patch_tokens)
            else:  # same weights, same input: the student's own features, detached
                tokens.append(student_out.dino_tokens(self.dino_token)[g].detach())
                patches.append(student_out.patches[g].detach())
        return torch.stack(tokens), torch.stack(patches)

    def _tokens(self, feats: ImageFeatures) -> torch.Tensor:
        return feats.cls1 if self.dino_token == "cls1" else feats.cls2

    @torch.no_grad()
    def forward(
        self, student: Student, batch: Batch, student_out: StudentOutputs, ibot_index: torch.Tensor | None
    ) -> TeacherOutputs:
        if self.dino_head is None and self.ibot_head is None:
            return TeacherOutputs(None, None)
        tokens, patches = self.features(student, batch, student_out)
        dino = self.dino_head(tokens) if self.dino_head is not None else None
        ibot = None
        if self.ibot_head is not None and ibot_index is not None:
            ibot = self.ibot_head(patches.reshape(-1, patches.shape[-1])[ibot_index])
        return TeacherOutputs(dino, ibot)


class FrozenTeacher(nn.Module):
    """A trained TIPSv2 image tower (official layout) whose patch tokens the student distils; never updated."""

    def __init__(self, weights_dir: str | Path, variant: str) -> None:
        super().__init__()
        self.visual = load_pretrained(weights_dir, variant).visual.eval().requires_grad_(False)

    @property
    def embed_dim(self) -> int:
        return int(self.visual.cfg.embed_dim)

    @torch.no_grad()
    def forward(self, global_views: torch.Tensor) -> torch.Tensor:
        """(G, B, 3, S, S) intact views -> (G, B, N, D_teacher) patch tokens."""
        G, B = global_views.shape[:2]
        patches: torch.Tensor = self.visual(global_views.flatten(0, 1)).patch_tokens
        return patches.reshape(G, B, *patches.shape[1:])
