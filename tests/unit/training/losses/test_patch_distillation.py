"""Patch distillation: mean cosine distance over every patch token."""

from __future__ import annotations

import pytest
import torch

from training.losses import PatchDistillationLoss


def test_patch_distillation_is_mean_cosine_distance_over_all_patches() -> None:
    teacher = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # (B=1, N=3, D=2)
    student = torch.tensor([[[3.0, 0.0], [1.0, 0.0], [-1.0, -1.0]]])  # same, orthogonal, opposite
    out = PatchDistillationLoss(weight=2.0)(student, teacher)["patch_distill_loss"]
    assert out.item() == pytest.approx(2.0 * (0.0 + 1.0 + 2.0) / 3, abs=1e-6)


def test_patch_distillation_sends_no_gradient_to_the_teacher() -> None:
    teacher = torch.randn(2, 4, 8, requires_grad=True)
    student = torch.randn(2, 4, 8, requires_grad=True)
    PatchDistillationLoss()(student, teacher)["patch_distill_loss"].backward()
    assert teacher.grad is None and student.grad is not None


def test_patch_distillation_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="student patches"):
        PatchDistillationLoss()(torch.zeros(1, 4, 8), torch.zeros(1, 5, 8))
