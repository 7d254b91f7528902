"""Schedules are pure functions of the step."""

from __future__ import annotations

import itertools
import math

import pytest

from training.train.config import OptimCfg, TeacherCfg
from training.train.schedules import Schedules, cosine, linear_warmup, warmup_cosine


def test_warmup_cosine_rises_linearly_then_falls_to_final() -> None:
    values = [warmup_cosine(s, total=10, warmup=2, peak=1.0, final=0.0) for s in range(11)]
    assert values[:3] == pytest.approx([0.5, 1.0, 1.0])
    assert values[6] == pytest.approx(0.5)  # half-way through the 8 cosine steps
    assert values[10] == 0.0 and all(a >= b for a, b in itertools.pairwise(values[1:]))


def test_cosine_and_linear_warmup_endpoints() -> None:
    assert cosine(0, 100, 0.992, 1.0) == pytest.approx(0.992)
    assert cosine(100, 100, 0.992, 1.0) == 1.0
    assert linear_warmup(0, 10, 0.04, 0.07) == pytest.approx(0.04)
    assert linear_warmup(5, 10, 0.04, 0.07) == pytest.approx(0.055)
    assert linear_warmup(50, 10, 0.04, 0.07) == 0.07


def test_schedules_combine_every_value_of_a_step() -> None:
    optim = OptimCfg(100, 8, 1e-3, 0.0, 10, 0.04, 0.4, (0.9, 0.999), 3.0)
    teacher = TeacherCfg("head", 0.99, 1.0, 0.07, 0.04, 20)
    at = Schedules(optim, teacher).at(55)
    assert at.lr == pytest.approx(0.5e-3)
    assert at.weight_decay == pytest.approx(0.4 - 0.36 * 0.5 * (1 + math.cos(math.pi * 0.55)), rel=1e-9)
    assert at.teacher_temp == 0.07 and 0.99 < at.momentum < 1.0
