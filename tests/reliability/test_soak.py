"""A short soak (marked `soak`, not run by default: `pytest -m soak tests/reliability/test_soak.py`): the stack at a
steady rate with adapter swaps and cache churn for one minute, no 5xx and flat memory (bench/soak.py runs longer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.soak import main

pytestmark = [pytest.mark.soak, pytest.mark.integration]


def test_one_minute_soak_answers_every_request_and_keeps_memory_flat(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    code = main(["--minutes", "1", "--rate", "10", "--swap-s", "5", "--sample-s", "2", "--workdir", str(tmp_path),
                 "--out", str(out)])  # fmt: skip
    result = json.loads(out.read_text())
    assert code == 0, result
    assert result["failures_5xx_or_no_answer"] == 0 and result["statuses"] == {"200": result["requests"]}
    assert result["swaps"]["uploads_201"] >= 10
