"""Teacher targets: Sinkhorn-Knopp balances prototypes; centring subtracts a running mean."""

from __future__ import annotations

import pytest
import torch

from training.losses import TeacherTargets, sinkhorn_knopp


def test_sinkhorn_targets_are_distributions_that_use_prototypes_equally() -> None:
    logits = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    q = sinkhorn_knopp(logits, temperature=0.5, iterations=10)
    assert q.sum(dim=1).tolist() == pytest.approx([1.0] * 64, abs=1e-5)
    assert q.sum(dim=0).tolist() == pytest.approx([64 / 8] * 8, rel=1e-2)


def test_sinkhorn_of_constant_logits_is_uniform() -> None:
    q = sinkhorn_knopp(torch.zeros(3, 4), temperature=0.1)
    assert q.flatten().tolist() == pytest.approx([0.25] * 12)


def test_warm_started_centre_begins_at_the_first_batch_mean_then_follows_the_ema() -> None:
    targets = TeacherTargets(2, momentum=0.9)
    first = targets(torch.tensor([[2.0, 0.0], [0.0, 0.0]]), temperature=1.0)
    assert targets.center.flatten().tolist() == pytest.approx([1.0, 0.0])
    # centred by the batch's own mean: logits (1, 0) and (-1, 0)
    assert first[0].tolist() == pytest.approx(torch.softmax(torch.tensor([1.0, 0.0]), 0).tolist())
    targets(torch.tensor([[3.0, 1.0]]), temperature=1.0)
    assert targets.center.flatten().tolist() == pytest.approx([0.9 * 1.0 + 0.1 * 3.0, 0.1 * 1.0])


def test_zero_started_centre_leaves_the_first_targets_uncentred() -> None:
    targets = TeacherTargets(2, momentum=0.9, warm_start=False)
    first = targets(torch.tensor([[2.0, 0.0]]), temperature=1.0)
    assert first[0].tolist() == pytest.approx(torch.softmax(torch.tensor([2.0, 0.0]), 0).tolist())
    assert targets.center.flatten().tolist() == pytest.approx([0.2, 0.0])


def test_centering_targets_do_not_move_the_centre_for_sinkhorn() -> None:
    targets = TeacherTargets(4, method="sinkhorn")
    targets(torch.randn(5, 4), 0.1)
    assert targets.center.abs().sum().item() == 0.0


def test_unknown_centering_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown teacher centering"):
        TeacherTargets(4, method="none")  # type: ignore[arg-type]
