"""iBOT masked-image self-distillation on patch tokens, classic (masked patches only) or iBOT++ (every patch).

The student sees the global views with masked patches replaced by the mask token; the teacher sees them intact; at
each selected patch index the student's distribution over prototypes is pulled to the teacher's.

- `masked` (iBOT, DINOv2 `iBOTPatchLoss.forward_masked`): L = -(1/I) sum_i (1/M_i) sum_{p masked in i} t_p . log s_p
  over the I images of the global views (images without a mask contribute 0 but still count in I).
- `plus` (TIPSv2's iBOT++): visible patches contribute as well: L = -(1/I) sum_i (1/N) sum_{all p} t_p . log s_p.
  The TIPSv2 paper's exact weighting is not public; this uniform per-patch weight is the natural dense form (DINOv2's
  own dense `forward` with an all-ones mask).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from training.losses.targets import Centering, TeacherTargets

IBOTMode = Literal["plus", "masked"]


@dataclass(frozen=True)
class TokenSelection:
    """Which patch tokens the loss covers, as flat indices into (images * patches), and each one's weight."""

    index: torch.Tensor  # (M,) long
    weight: torch.Tensor  # (M,) float
    num_images: int


class IBOTPatchLoss(nn.Module):
    def __init__(
        self,
        out_dim: int,
        mode: IBOTMode = "plus",
        student_temp: float = 0.1,
        centering: Centering = "centering",
        center_momentum: float = 0.9,
        weight: float = 1.0,
        center_warm_start: bool = True,
    ) -> None:
        super().__init__()
        if mode not in ("plus", "masked"):
            raise ValueError(f"unknown iBOT mode {mode!r}: use plus (iBOT++) or masked (classic iBOT)")
        self.mode, self.student_temp, self.weight = mode, student_temp, weight
        self.targets = TeacherTargets(out_dim, centering, center_momentum, warm_start=center_warm_start)

    def select(self, masks: torch.Tensor) -> TokenSelection:
        """`masks` (I, N) bool, True where the student saw the mask token -> the tokens this loss covers."""
        images, N = masks.shape
        if self.mode == "plus":
            index = torch.arange(images * N, device=masks.device)
            return TokenSelection(index, torch.full((images * N,), 1.0 / N, device=masks.device), images)
        per_image = 1.0 / masks.sum(dim=1).clamp(min=1).float()  # (I,)
        index = masks.reshape(-1).nonzero().squeeze(1)
        return TokenSelection(index, per_image[index // N], images)

    @torch.no_grad()
    def teacher_probs(self, teacher_logits: torch.Tensor, teacher_temp: float) -> torch.Tensor:
        """(M, K) teacher logits at the selected tokens -> (M, K) targets."""
        probs: torch.Tensor = self.targets(teacher_logits, teacher_temp)
        return probs

    def forward(
        self, student_logits: torch.Tensor, teacher_probs: torch.Tensor, selection: TokenSelection
    ) -> dict[str, torch.Tensor]:
        """`student_logits`, `teacher_probs`: (M, K) at the selected tokens, in `selection.index` order."""
        log_probs = F.log_softmax(student_logits.float() / self.student_temp, dim=-1)
        per_token = (teacher_probs * log_probs).sum(dim=-1)  # (M,)
        loss = -(per_token * selection.weight).sum() / max(selection.num_images, 1)
        return {"ibot_loss": self.weight * loss}
