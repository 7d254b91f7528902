"""iBOT (masked patches only) and iBOT++ (every patch) on hand-computed inputs."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import IBOTPatchLoss

# Two images of two patches; only patch 0 of image 0 is masked.
MASKS = torch.tensor([[True, False], [False, False]])
# Per-token cross-entropies with student_temp 1 and one-hot / uniform targets:
STUDENT = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0], [0.0, math.log(3.0)], [0.0, 0.0]])  # (4 tokens, K=2)
TEACHER = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.5, 0.5]])
CE = [-math.log(0.75), math.log(2.0), -math.log(0.25), math.log(2.0)]


def run(mode: str) -> float:
    loss = IBOTPatchLoss(out_dim=2, mode=mode, student_temp=1.0)  # type: ignore[arg-type]
    selection = loss.select(MASKS)
    out = loss(STUDENT[selection.index], TEACHER[selection.index], selection)
    return float(out["ibot_loss"])


def test_classic_ibot_covers_masked_patches_only_and_divides_by_all_images() -> None:
    # image 0: its one masked patch, weight 1/1; image 1: nothing; divided by the 2 images
    assert run("masked") == pytest.approx(CE[0] / 2, abs=1e-6)


def test_ibot_plus_plus_covers_visible_patches_too() -> None:
    # every patch, weight 1/N = 1/2 per image, divided by the 2 images
    assert run("plus") == pytest.approx(sum(CE) / 2 / 2, abs=1e-6)


def test_classic_ibot_weights_each_image_by_its_own_masked_count() -> None:
    loss = IBOTPatchLoss(out_dim=2, mode="masked")
    selection = loss.select(torch.tensor([[True, True, False], [True, False, False]]))
    assert selection.index.tolist() == [0, 1, 3]
    assert selection.weight.tolist() == pytest.approx([0.5, 0.5, 1.0])
    assert selection.num_images == 2


def test_ibot_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown iBOT mode"):
        IBOTPatchLoss(out_dim=2, mode="visible")  # type: ignore[arg-type]
