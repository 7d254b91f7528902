"""Patch-level distillation from a frozen teacher over every patch token (TIPSv2's "full-area supervision").

The TIPSv2 observation: a student distilled on all patch tokens (no masking) can beat its teacher on zero-shot
segmentation. The paper's exact distance is not public; this uses the cosine distance, which ignores the feature
norm (the teacher's and student's may differ) and matches how patch features are used downstream (cosine to text).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDistillationLoss(nn.Module):
    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> dict[str, torch.Tensor]:
        """`student`, `teacher`: (..., N, D) patch tokens at the same positions; mean of 1 - cos over all of them."""
        if student.shape != teacher.shape:
            raise ValueError(f"student patches {tuple(student.shape)} vs teacher {tuple(teacher.shape)}")
        cosine = F.cosine_similarity(student.float(), teacher.float().detach(), dim=-1)
        return {"patch_distill_loss": self.weight * (1.0 - cosine).mean()}
