"""Block masks: never more than asked, made of blocks, and sampled per example."""

from __future__ import annotations

import numpy as np

from training.data.masking import block_mask, sample_mask


def test_block_mask_never_exceeds_the_target_and_gets_close_to_it() -> None:
    rng = np.random.default_rng(0)
    for target in (4, 10, 20, 32):
        mask = block_mask(rng, (8, 8), target)
        assert mask.sum() <= target
        assert mask.sum() >= target * 0.5


def test_block_mask_is_made_of_blocks_not_scattered_patches() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        mask = block_mask(rng, (8, 8), 16)
        padded = np.pad(mask, 1)
        neighbours = padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
        # in blocks of >= 4 patches nearly every masked patch touches another masked patch
        assert (mask & neighbours).sum() >= 0.9 * mask.sum()


def test_sample_mask_respects_probability_and_ratio() -> None:
    rng = np.random.default_rng(0)
    masks = [sample_mask(rng, (8, 8), probability=0.5, ratio=(0.1, 0.5)) for _ in range(400)]
    masked = [m for m in masks if m.any()]
    assert 150 < len(masked) < 250
    assert all(m.shape == (64,) and m.sum() <= 32 for m in masks)
    assert not any(sample_mask(rng, (8, 8), 0.0, (0.1, 0.5)).any() for _ in range(20))
