"""The recipe's objectives, one per module; each returns a dict of named `*_loss` terms (weights applied inside)."""

from collections.abc import Mapping

import torch

from training.losses.contrastive import ContrastiveLoss
from training.losses.dino_clstoken import DINOLoss
from training.losses.ibot_patch import IBOTPatchLoss, TokenSelection
from training.losses.koleo import KoLeoLoss
from training.losses.patch_distillation import PatchDistillationLoss
from training.losses.targets import TeacherTargets, sinkhorn_knopp

__all__ = [
    "ContrastiveLoss",
    "DINOLoss",
    "IBOTPatchLoss",
    "KoLeoLoss",
    "PatchDistillationLoss",
    "TeacherTargets",
    "TokenSelection",
    "sinkhorn_knopp",
    "total_loss",
]


def total_loss(terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Sum of every `*_loss` entry (open_clip's convention): adding a term needs no trainer change."""
    losses = [value for key, value in terms.items() if key.endswith("_loss")]
    if not losses:
        raise ValueError("no *_loss term to optimise: enable at least one loss")
    return torch.stack(losses).sum()
