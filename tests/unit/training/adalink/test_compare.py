"""The comparison's building blocks: one arm-seed run, the summary over seeds, the table, the step timing."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.adalink.compare import Arm, markdown, run_arm, step_seconds, summarise

TINY = "tipsv2-tiny"


@pytest.fixture
def task_file(tmp_path: Path, survey_dirs) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "task.yaml"
    path.write_text(
        "name: t\nkind: classification\n"
        f"data: {{train: {survey_dirs[0]}, eval: {survey_dirs[1]}}}\n"
        "templates: ['a photo of a {}.']\noptim: {steps: 3, batch_size: 8, warmup_steps: 1}\n"
    )
    return path


def test_run_arm_trains_and_scores_and_checks_the_base(tiny_weights: Path, task_file: Path) -> None:
    base = run_arm(Arm("base", "base"), tiny_weights, task_file, seed=0)
    adalink = run_arm(Arm("a", "adalink", 4), tiny_weights, task_file, seed=1, overrides=("adapter.modalities=[text]",))
    assert base["trainable"] == 0 and 0 <= base["metric"]["top1"] <= 1
    assert adalink["base_unchanged"] and adalink["seed"] == 1 and adalink["modalities"] == ["text"]
    assert adalink["trainable"] == 2 * 4 * 64 and adalink["seconds"] > 0


def test_summary_is_mean_and_sample_std_over_seeds() -> None:
    runs = [{"metric": {"metric": m}, "trainable": 10, "seconds": 2.0} for m in (0.5, 0.7, 0.9)]
    summary = summarise(runs)
    assert summary["mean"] == pytest.approx(0.7) and summary["std"] == pytest.approx(0.2) and summary["seeds"] == 3
    table = markdown({"adalink-r4": summary}, "top-1")
    assert "| adalink-r4 | 0.700 ± 0.200 | 3 | 10 | 2 |" in table


def test_step_seconds_times_each_trained_arm(tiny_weights: Path, task_file: Path) -> None:
    arms = [Arm("base", "base"), Arm("a", "adalink", 4), Arm("l", "lora", 4), Arm("x", "adalink", 4, ("k=v",))]
    seconds = step_seconds(arms, tiny_weights, task_file, rounds=1, warmup=0)
    assert set(seconds) == {"a", "l"} and min(seconds.values()) > 0
