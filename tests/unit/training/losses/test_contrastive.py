"""The contrastive loss equals hand-computed InfoNCE values and trains the temperature."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import ContrastiveLoss


def test_contrastive_loss_matches_hand_computed_value_when_pairs_are_orthonormal() -> None:
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # norms do not matter: the loss uses cosines
    out = ContrastiveLoss("c")(image, text, torch.tensor(1.0))
    # Each row: logits (1, 0) with the target first: -log(e / (e + 1)), both directions alike.
    assert out["c_loss"].item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)


def test_contrastive_loss_uses_temperature_and_weight() -> None:
    image = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = 0.5
    out = ContrastiveLoss("c", weight=2.0)(image, text, torch.tensor(t))

    # image->text rows: (1, 0)/t with target 0 and (0.6, 0.8)/t with target 1; text->image columns likewise.
    def ce(logits: list[float], target: int) -> float:
        return -logits[target] / t + math.log(sum(math.exp(v / t) for v in logits))

    i2t = (ce([1.0, 0.0], 0) + ce([0.6, 0.8], 1)) / 2
    t2i = (ce([1.0, 0.6], 0) + ce([0.0, 0.8], 1)) / 2
    assert out["c_loss"].item() == pytest.approx(2.0 * (i2t + t2i) / 2, abs=1e-5)


def test_contrastive_loss_gradient_reaches_log_temperature() -> None:
    log_t = torch.tensor(math.log(0.07), requires_grad=True)
    image, text = torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), torch.randn(4, 8)
    ContrastiveLoss()(image, text, log_t.exp())["contrastive_loss"].backward()
    assert log_t.grad is not None and log_t.grad.abs().item() > 0
