"""KoLeo: -mean log distance to the nearest other embedding."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import KoLeoLoss


def test_koleo_matches_hand_computed_nearest_neighbour_distances() -> None:
    s = math.sqrt(3) / 2
    points = torch.tensor([[[1.0, 0.0], [0.5, s], [-1.0, 0.0]]])  # (V=1, B=3, D=2) at 0, 60 and 180 degrees
    # nearest neighbours: 0 -> 60 (distance 1), 60 -> 0 (1), 180 -> 60 (sqrt 3)
    expected = -(0.0 + 0.0 + math.log(math.sqrt(3))) / 3
    assert KoLeoLoss(weight=1.0)(points)["koleo_loss"].item() == pytest.approx(expected, abs=1e-6)


def test_koleo_averages_views_and_applies_its_weight() -> None:
    s = math.sqrt(3) / 2
    view = torch.tensor([[1.0, 0.0], [0.5, s], [-1.0, 0.0]])
    spread = torch.tensor([[1.0, 0.0], [-0.5, s], [-0.5, -s]])  # 120 degrees apart: every distance sqrt 3
    out = KoLeoLoss(weight=0.1)(torch.stack([view, spread]))["koleo_loss"].item()
    assert out == pytest.approx(0.1 * (-math.log(3) / 6 - math.log(math.sqrt(3))) / 2, abs=1e-6)


def test_koleo_is_lower_for_spread_out_points() -> None:
    clumped = torch.tensor([[[1.0, 0.0], [0.99, 0.1], [0.98, 0.2]]])
    spread = torch.tensor([[[1.0, 0.0], [-0.5, 0.866], [-0.5, -0.866]]])
    assert KoLeoLoss()(spread)["koleo_loss"] < KoLeoLoss()(clumped)["koleo_loss"]
