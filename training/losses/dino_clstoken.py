"""DINO self-distillation on the CLS token (DINOv2 `dino_clstoken_loss.py`).

Cross-entropy between the teacher's (centred, sharpened) distribution over prototypes for one global view and the
student's for every *other* view (the other global views and all local crops), averaged over those pairs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.losses.targets import Centering, TeacherTargets


class DINOLoss(nn.Module):
    def __init__(
        self,
        out_dim: int,
        student_temp: float = 0.1,
        centering: Centering = "centering",
        center_momentum: float = 0.9,
        weight: float = 1.0,
        center_warm_start: bool = True,
    ) -> None:
        super().__init__()
        self.student_temp, self.weight = student_temp, weight
        self.targets = TeacherTargets(out_dim, centering, center_momentum, warm_start=center_warm_start)

    @torch.no_grad()
    def teacher_probs(self, teacher_logits: torch.Tensor, teacher_temp: float) -> torch.Tensor:
        """(G, B, K) teacher logits of the global views -> (G, B, K) targets."""
        G, B, K = teacher_logits.shape
        probs: torch.Tensor = self.targets(teacher_logits.reshape(G * B, K), teacher_temp)
        return probs.reshape(G, B, K)

    def forward(self, student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> dict[str, torch.Tensor]:
        """`student_logits` (V, B, K), global views first then local crops; `teacher_probs` (G, B, K)."""
        log_probs = F.log_softmax(student_logits.float() / self.student_temp, dim=-1)
        total = student_logits.new_zeros((), dtype=torch.float32)
        pairs = 0
        for s in range(log_probs.shape[0]):
            for t in range(teacher_probs.shape[0]):
                if s == t:  # a global view is never its own target
                    continue
                total = total - (teacher_probs[t] * log_probs[s]).sum(dim=-1).mean()
                pairs += 1
        if pairs == 0:
            raise ValueError("the DINO loss needs at least two views (two global views, or local crops)")
        return {"dino_loss": self.weight * total / pairs}
