"""Per-step schedules: warm-up then cosine (lr), cosine (weight decay, EMA momentum), linear warm-up (teacher temp).

Pure functions of the step, so a resumed run recomputes exactly the values an uninterrupted run would have used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from training.train.config import OptimCfg, TeacherCfg


def cosine(step: int, total: int, start: float, end: float) -> float:
    """`start` at step 0 to `end` at step `total` (and after), along half a cosine."""
    if total <= 0 or step >= total:
        return end
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * step / total))


def linear_warmup(step: int, steps: int, start: float, end: float) -> float:
    if steps <= 0 or step >= steps:
        return end
    return start + (end - start) * step / steps


def warmup_cosine(step: int, total: int, warmup: int, peak: float, final: float) -> float:
    """Linear from 0 to `peak` over `warmup` steps, then cosine to `final` at `total`."""
    if step < warmup:
        return peak * (step + 1) / warmup  # step 0 already moves: a zero lr step would only waste compute
    return cosine(step - warmup, total - warmup, peak, final)


@dataclass(frozen=True)
class StepValues:
    lr: float
    weight_decay: float
    momentum: float
    teacher_temp: float


@dataclass(frozen=True)
class Schedules:
    optim: OptimCfg
    teacher: TeacherCfg

    def at(self, step: int) -> StepValues:
        o, t = self.optim, self.teacher
        return StepValues(
            lr=warmup_cosine(step, o.steps, o.warmup_steps, o.lr, o.min_lr),
            weight_decay=cosine(step, o.steps, o.weight_decay, o.final_weight_decay),
            momentum=cosine(step, o.steps, t.momentum, t.final_momentum),
            teacher_temp=linear_warmup(step, t.warmup_temp_steps, t.warmup_temp, t.temp),
        )
