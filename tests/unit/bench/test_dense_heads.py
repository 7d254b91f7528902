"""The dense-heads benchmark reports every figure it documents: both passes of the tower, each head, each total."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.dense_heads import main


def test_every_head_and_total_is_timed_at_every_resolution(tmp_path: Path) -> None:
    args = ["--variant", "tiny", "--resolutions", "28", "42", "--seconds", "0", "--out", str(tmp_path)]
    assert main(args) == 0
    rows = json.loads((tmp_path / "dense_heads.json").read_text())["results"]
    for px in (28, 42):
        figures = {r["what"]: r for r in rows if r["resolution"] == px}
        heads = ("segmentation", "depth", "normals")
        assert set(figures) == {
            "encoder (embedding path)",
            "encoder + DPT layers",
            *(f"{h} head" for h in heads),
            *(f"{h} total" for h in heads),
        }
        assert all(r["ms"] > 0 and r["cpu_ms"] >= 0 for r in figures.values())
        for head in heads:
            total = figures["encoder + DPT layers"]["ms"] + figures[f"{head} head"]["ms"]
            assert figures[f"{head} total"]["ms"] == pytest.approx(total)
