"""The zero-shot head's loss: cross-entropy of softmax(cos(image, label) / temperature) against the true label.

The logits are exactly those of `training.tipsv2.zeroshot.classify` (what the served classify endpoint and the
evaluation compute), so training optimises the metric's own scores; the temperature is the base checkpoint's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def zero_shot_logits(image: torch.Tensor, labels: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """(B, D) image embeddings, (C, D) label embeddings -> (B, C) cos / temperature."""
    return F.normalize(image.float(), dim=-1) @ F.normalize(labels.float(), dim=-1).T / temperature


def zero_shot_classification_loss(
    image: torch.Tensor, labels: torch.Tensor, temperature: float | torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy over the batch; `targets` (B,) are label ids into the rows of `labels`."""
    return F.cross_entropy(zero_shot_logits(image, labels, temperature), targets)
