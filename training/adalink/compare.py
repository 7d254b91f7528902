"""The adapter comparison of `docs/experiments/adalink.md`: base zero-shot, AdaLink at several ranks, LoRA on the
attention projections and full fine-tuning, trained alike on one task over several seeds.

`bench/experiments/adalink.py` drives it (data, base, every arm x seed, report). Every arm trains with the task's
optimiser settings plus its own overrides, on the same examples in the same order for a seed, and is scored with
the same task metric on the task's eval split.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from training.adalink.adapt import load_base
from training.adalink.checksum import state_checksum
from training.adalink.evaluate import evaluate
from training.adalink.task_data import load_task_data
from training.adalink.tasks import load_task
from training.adalink.train import TaskObjective, batch_indices, fit, train_step
from training.adalink.tuners import prepare


@dataclass(frozen=True)
class Arm:
    name: str
    method: str  # base (no training) | adalink | lora | full
    rank: int = 0
    overrides: tuple[str, ...] = field(default=())  # task overrides of this arm (e.g. its learning rate)


def run_arm(arm: Arm, base_dir: Path, task_file: Path, seed: int, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """Trains one arm for one seed on a freshly loaded base; returns its metrics, size and training time."""
    torch.manual_seed(seed)
    task = load_task(task_file, [*overrides, *arm.overrides, f"optim.seed={seed}"])
    base = load_base(base_dir)
    train = load_task_data(task, task.train_data)
    evaluation = load_task_data(task, task.eval_data, train.label_names if task.kind == "classification" else None)
    if arm.method == "base":
        return {"seed": seed, "metric": evaluate(base.model, base.tokenizer, task, evaluation), "trainable": 0}
    before = state_checksum(base.model)
    tuned = prepare(arm.method, base.model, task.adapter.modalities, arm.rank, task.adapter.activation, seed)
    report = fit(tuned, task, train, base.tokenizer)
    return {
        "seed": seed,
        "metric": evaluate(tuned.model, base.tokenizer, task, evaluation),
        "trainable": tuned.num_trainable,
        "seconds": report.seconds,
        "final_loss": report.final_loss,
        "base_unchanged": state_checksum(base.model) == before,
        "optim": task.raw["optim"],
        "modalities": list(task.adapter.modalities),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Mean and sample standard deviation of the task metric over seeds, trainable size, mean training time."""
    metrics = [r["metric"]["metric"] for r in runs]
    return {
        "mean": statistics.fmean(metrics),
        "std": statistics.stdev(metrics) if len(metrics) > 1 else 0.0,
        "seeds": len(runs),
        "trainable": runs[0]["trainable"],
        "seconds": statistics.fmean(r.get("seconds", 0.0) for r in runs),
    }


def markdown(summaries: dict[str, dict[str, float]], metric_name: str) -> str:
    rows = [
        f"| arm | {metric_name} (mean ± std) | seeds | trainable parameters | training time (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, s in summaries.items():
        seconds = f"{s['seconds']:.0f}" if s["trainable"] else "—"
        rows.append(f"| {name} | {s['mean']:.3f} ± {s['std']:.3f} | {s['seeds']} | {s['trainable']:,} | {seconds} |")
    return "\n".join(rows)


def step_seconds(
    arms: list[Arm], base_dir: Path, task_file: Path, overrides: tuple[str, ...] = (), rounds: int = 20, warmup: int = 3
) -> dict[str, float]:
    """Median seconds per training step of each trained arm, in interleaved rounds over the same batches (one step
    of every arm per round), so that a shared machine's drift hits every arm alike. Arms with task overrides of
    their own are skipped (they would need their own task)."""
    task = load_task(task_file, overrides)
    base = load_base(base_dir)
    data = load_task_data(task, task.train_data)
    setups = {}
    for arm in arms:
        if arm.method == "base" or arm.overrides:
            continue
        tuned = prepare(arm.method, base.model, task.adapter.modalities, arm.rank, task.adapter.activation, 0)
        objective = TaskObjective(task, data, base.tokenizer, text_trainable="text" in tuned.modalities)
        optimizer = torch.optim.AdamW(tuned.trainable, lr=task.optim.lr)
        tuned.model.train()
        setups[arm.name] = (tuned, objective, optimizer)
    times: dict[str, list[float]] = {name: [] for name in setups}
    for round_index, index in enumerate(batch_indices(len(data), task.optim.batch_size, warmup + rounds, 0)):
        for name, (tuned, objective, optimizer) in setups.items():
            started = time.perf_counter()
            train_step(tuned, objective, optimizer, index, task.optim.clip_grad)
            if round_index >= warmup:
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}
