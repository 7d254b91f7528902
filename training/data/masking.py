"""Block masks for masked-image self-distillation (BEiT / iBOT / DINOv2 `MaskingGenerator`).

Masks are rectangles of at least `min_block` patches with aspect ratio in [0.3, 1/0.3], added until the target
count would be exceeded. DINOv2 spreads mask ratios over a batch with `linspace(0.1, 0.5)`; here each sample draws
its own ratio uniformly in the same range from its own generator, which has the same expectation and keeps a sample's
mask independent of how the batch is split across processes.
"""

from __future__ import annotations

import math

import numpy as np


def block_mask(
    rng: np.random.Generator,
    grid: tuple[int, int],
    num_masked: int,
    min_block: int = 4,
    aspect: tuple[float, float] = (0.3, 1 / 0.3),
    attempts: int = 10,
) -> np.ndarray:
    """(grid_h, grid_w) bool mask with at most `num_masked` True patches, made of rectangular blocks."""
    gh, gw = grid
    mask = np.zeros((gh, gw), dtype=bool)
    log_aspect = (math.log(aspect[0]), math.log(aspect[1]))
    count = 0
    while count < num_masked:
        remaining = num_masked - count
        added = 0
        for _ in range(attempts):
            # BEiT's random.uniform(min_block, remaining): when remaining < min_block, a value between the two
            area = rng.uniform(*sorted((min_block, remaining)))
            ratio = math.exp(rng.uniform(*log_aspect))
            h, w = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
            if not (0 < h <= gh and 0 < w <= gw):
                continue
            top, left = int(rng.integers(0, gh - h + 1)), int(rng.integers(0, gw - w + 1))
            block = mask[top : top + h, left : left + w]
            new = int(h * w - block.sum())
            if 0 < new <= remaining:
                block[...] = True
                added = new
                break
        if added == 0:  # no block fits the remaining budget: stop short rather than overshoot
            break
        count += added
    return mask


def sample_mask(
    rng: np.random.Generator,
    grid: tuple[int, int],
    probability: float,
    ratio: tuple[float, float],
    min_block: int = 4,
) -> np.ndarray:
    """A flat (grid_h * grid_w,) bool mask: with `probability`, a block mask of a uniformly drawn ratio."""
    n = grid[0] * grid[1]
    if rng.random() >= probability:
        return np.zeros(n, dtype=bool)
    target = round(rng.uniform(*ratio) * n)
    return block_mask(rng, grid, target, min_block).reshape(n)
