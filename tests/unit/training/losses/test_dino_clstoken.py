"""DINO CLS loss: cross-entropy over (student view, other teacher view) pairs, with centred teacher targets."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import DINOLoss


def test_dino_loss_averages_cross_entropy_over_pairs_of_different_views() -> None:
    loss = DINOLoss(out_dim=2, student_temp=1.0)
    student = torch.tensor([[[0.0, 0.0]], [[math.log(3.0), 0.0]]])  # (V=2, B=1, K=2): softmax (.5,.5), (.75,.25)
    teacher = torch.tensor([[[1.0, 0.0]], [[0.5, 0.5]]])  # (G=2, B=1, K=2)
    # pairs: student view 0 vs teacher view 1 -> ln 2; student view 1 vs teacher view 0 -> -ln .75
    expected = (math.log(2.0) - math.log(0.75)) / 2
    assert loss(student, teacher)["dino_loss"].item() == pytest.approx(expected, abs=1e-6)


def test_dino_loss_pairs_local_crops_with_every_global_view() -> None:
    loss = DINOLoss(out_dim=2, student_temp=1.0, weight=0.5)
    student = torch.zeros(3, 1, 2)  # two global views, one local crop, all uniform: every pair costs ln 2
    teacher = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    # pairs: (g0, t1), (g1, t0), (local, t0), (local, t1) -> 4 pairs of ln 2
    assert loss(student, teacher)["dino_loss"].item() == pytest.approx(0.5 * math.log(2.0), abs=1e-6)


def test_dino_teacher_targets_use_the_old_centre_then_update_it() -> None:
    loss = DINOLoss(out_dim=2, center_momentum=0.9, center_warm_start=False)
    loss.targets.center.copy_(torch.tensor([[1.0, 0.0]]))
    probs = loss.teacher_probs(torch.tensor([[[2.0, 0.0]]]), teacher_temp=1.0)
    assert probs[0, 0].tolist() == pytest.approx([math.e / (math.e + 1), 1 / (math.e + 1)], abs=1e-6)
    assert loss.targets.center.flatten().tolist() == pytest.approx([1.1, 0.0], abs=1e-6)


def test_dino_loss_refuses_a_single_view() -> None:
    with pytest.raises(ValueError, match="at least two views"):
        DINOLoss(out_dim=2)(torch.zeros(1, 1, 2), torch.full((1, 1, 2), 0.5))
