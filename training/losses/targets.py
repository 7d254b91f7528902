"""Teacher targets for self-distillation: a centred softmax or Sinkhorn-Knopp (DINOv2 `dino_clstoken_loss.py`).

Not a loss itself: `DINOLoss` and `IBOTPatchLoss` each own one `TeacherTargets`, whose centre is part of the
training state (it is saved with the checkpoint, so a resumed run continues bit for bit). Both methods reduce over
all ranks, so the targets of a global batch do not depend on how it is split across processes.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from training.train.distributed import all_reduce_sum

Centering = Literal["centering", "sinkhorn"]


@torch.no_grad()
def sinkhorn_knopp(logits: torch.Tensor, temperature: float, iterations: int = 3) -> torch.Tensor:
    """(M, K) logits -> (M, K) targets whose rows sum to 1 and whose prototypes are used equally (DINOv2)."""
    q = torch.exp(logits.float() / temperature).T  # (K, M)
    num_prototypes = q.shape[0]
    num_rows = all_reduce_sum(torch.tensor(float(q.shape[1]), device=q.device))
    q = q / all_reduce_sum(q.sum())
    for _ in range(iterations):
        q = q / all_reduce_sum(q.sum(dim=1, keepdim=True)) / num_prototypes  # each prototype gets mass 1/K
        q = q / q.sum(dim=0, keepdim=True) / num_rows  # each row gets mass 1/M
    return (q * num_rows).T


class TeacherTargets(nn.Module):
    center: torch.Tensor  # (1, K) buffer
    center_started: torch.Tensor  # () bool buffer

    """Teacher probabilities from teacher logits, by centring (DINO) or Sinkhorn-Knopp (DINOv2's L/g configs).

    `warm_start` (centring only): the centre starts at the first batch's mean logits instead of zero. DINO starts it
    at zero, which for the first ~1/(1 - momentum) steps leaves the targets uncentred: every image's teacher
    distribution peaks on the same prototypes, the loss starts artificially low and climbs while the centre catches
    up. Starting at the batch mean (what an EMA with bias correction also gives) removes that transient.
    """

    def __init__(
        self,
        out_dim: int,
        method: Centering = "centering",
        momentum: float = 0.9,
        iterations: int = 3,
        warm_start: bool = True,
    ) -> None:
        super().__init__()
        if method not in ("centering", "sinkhorn"):
            raise ValueError(f"unknown teacher centering {method!r}: use centering or sinkhorn")
        self.method, self.momentum, self.iterations, self.warm_start = method, momentum, iterations, warm_start
        self.register_buffer("center", torch.zeros(1, out_dim))
        self.register_buffer("center_started", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def forward(self, logits: torch.Tensor, temperature: float) -> torch.Tensor:
        """(M, K) teacher logits -> (M, K) probabilities. Centring uses the current centre, then updates it."""
        logits = logits.float()
        if self.method == "sinkhorn":
            return sinkhorn_knopp(logits, temperature, self.iterations)
        mean = self.batch_mean(logits)
        if mean is not None and self.warm_start and not self.center_started:
            self.center.copy_(mean)
            self.center_started.fill_(True)
            mean = None  # the centre already is this batch's mean
        probs = F.softmax((logits - self.center) / temperature, dim=-1)
        if mean is not None:
            self.center.mul_(self.momentum).add_(mean, alpha=1 - self.momentum)
            self.center_started.fill_(True)
        return probs

    @torch.no_grad()
    def batch_mean(self, logits: torch.Tensor) -> torch.Tensor | None:
        """(1, K) mean of this step's logits over every rank's rows; None when no rank has any row."""
        count = all_reduce_sum(torch.tensor(float(logits.shape[0]), device=logits.device))
        if count.item() == 0:
            return None
        return all_reduce_sum(logits.sum(dim=0, keepdim=True)) / count
