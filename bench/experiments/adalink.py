"""Reproduces every number of docs/experiments/adalink.md (AdaLink vs LoRA vs full fine-tuning, CPU-sized).

    python bench/experiments/adalink.py data      # world and survey shards (tipsv2 data synth)
    python bench/experiments/adalink.py base      # the base model: the recipe's loop (tipsv2 train), then tipsv2 eval
    python bench/experiments/adalink.py tune      # learning rate per method and regime, survey val split, seed 0
    python bench/experiments/adalink.py runs      # every arm x seed x regime on the survey's eval split; references
    python bench/experiments/adalink.py cost      # serving cost in a 64-tenant batch (bench/adapter_serving_cost.py)
    python bench/experiments/adalink.py report    # the tables
    python bench/experiments/adalink.py all       # all of the above, in order

Everything lands in --workdir (default build/experiments/adalink). Data, the base and the reference adapter go
through the `tipsv2` CLI (the commands are printed); the arms run in-process (`training.adalink.compare`), one
thread each, and each writes `runs/<regime>/<arm>/seed<k>.json`; a run whose result exists is skipped, so an
interrupted sweep continues. Two regimes: `full` (the tenant labels 2000 tiles) and `few` (240 tiles, about 20 per
class: the first 240 of the same split).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from training.adalink.compare import Arm, markdown, run_arm, step_seconds, summarise  # noqa: E402

TASKS = ROOT / "training" / "configs" / "tasks"
LANDCOVER, RETRIEVAL, WORLD = (
    TASKS / "survey_landcover.yaml",
    TASKS / "survey_retrieval.yaml",
    TASKS / "world_landcover.yaml",
)
BASE_CONFIG = ROOT / "docs" / "experiments" / "adalink_base.yaml"
BASE_STEPS = 400
SEEDS = (0, 1, 2)
REGIMES = {"full": "survey/train", "few": "survey/train240"}  # regime -> training shards
DATA = [  # (directory, world, split, samples)
    ("world/train", "world", "train", 2000),
    ("world/eval", "world", "eval", 500),
    ("survey/train", "survey", "train", 2000),
    ("survey/train240", "survey", "train", 240),
    ("survey/val", "survey", "val", 500),
    ("survey/eval", "survey", "eval", 500),
]
TUNED = {"adalink": "adalink-r16", "lora": "lora-r16", "full": "full"}  # the arm whose sweep sets a method's lr
LEARNING_RATES = {"adalink": (1e-3, 3e-3, 1e-2), "lora": (1e-3, 3e-3, 1e-2), "full": (1e-4, 3e-4, 1e-3)}
ARMS = [
    Arm("base", "base"),
    Arm("adalink-r4", "adalink", 4),
    Arm("adalink-r16", "adalink", 16),
    Arm("adalink-r64", "adalink", 64),
    Arm("lora-r16", "lora", 16),
    Arm("full", "full"),
    Arm("adalink-r16-image-only", "adalink", 16, ("adapter.modalities=[image]",)),
    Arm("adalink-r16-text-only", "adalink", 16, ("adapter.modalities=[text]",)),
]

log = logging.getLogger("adalink-experiment")


def tipsv2(*args: str) -> None:
    command = [sys.executable, "-m", "service.tools.cli.main", *args]
    print("$ tipsv2 " + " ".join(args), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, default=str) + "\n")


def data(work: Path) -> None:
    for directory, world, split, samples in DATA:
        if not (work / "data" / directory / "manifest.json").is_file():
            tipsv2("data", "synth", "--world", world, "--split", split, "--num-samples", str(samples),
                   "--seed", "0", "--out", str(work / "data" / directory))  # fmt: skip


def base_weights(work: Path) -> Path:
    return work / "base" / "checkpoints" / f"step_{BASE_STEPS:07d}"


def base(work: Path) -> None:
    if not base_weights(work).is_dir():
        tipsv2("train", "--config", str(BASE_CONFIG), f"run.dir={work / 'base'}",
               f"data.train={work / 'data' / 'world' / 'train'}")  # fmt: skip
    if not (work / "base_eval.json").is_file():
        tipsv2("eval", "--weights", str(base_weights(work)), "--variant", "tiny",
               "--data", str(work / "data" / "world" / "eval"), "--output", str(work / "base_eval.json"))  # fmt: skip


def data_overrides(work: Path, regime: str, eval_split: str) -> tuple[str, ...]:
    return (f"data.train={work / 'data' / REGIMES[regime]}", f"data.eval={work / 'data' / 'survey' / eval_split}")


def run_once(work: Path, out: Path, arm: Arm, task: Path, seed: int, overrides: tuple[str, ...]) -> dict[str, Any]:
    if out.is_file():
        result: dict[str, Any] = json.loads(out.read_text())
        return result
    result = run_arm(arm, base_weights(work), task, seed, overrides)
    log.info("%s seed %d: %s (%.0f s)", arm.name, seed, result["metric"], result.get("seconds", 0.0))
    write_json(out, result)
    return result


def tune(work: Path) -> None:
    """Per regime and method, the learning rate with the best val metric (seed 0; ties: the smaller rate), written
    to tuned_lr.json."""
    arms = {a.name: a for a in ARMS}
    chosen: dict[str, dict[str, float]] = {}
    for regime in REGIMES:
        chosen[regime] = {}
        for method, arm_name in TUNED.items():
            scores = {}
            for lr in LEARNING_RATES[method]:
                out = work / "tune" / regime / arm_name / f"lr{lr:g}.json"
                overrides = (*data_overrides(work, regime, "val"), f"optim.lr={lr}")
                scores[lr] = run_once(work, out, arms[arm_name], LANDCOVER, 0, overrides)["metric"]["metric"]
            chosen[regime][method] = max(sorted(scores), key=lambda lr: scores[lr])
            log.info("%s %s: val %s -> lr %g", regime, method, scores, chosen[regime][method])
    write_json(work / "tuned_lr.json", chosen)


def runs(work: Path) -> None:
    lrs = json.loads((work / "tuned_lr.json").read_text())
    for regime in REGIMES:
        for arm in ARMS:
            lr = () if arm.method == "base" else (f"optim.lr={lrs[regime][arm.method]}",)
            for seed in SEEDS[:1] if arm.method == "base" else SEEDS:
                run_once(work, work / "runs" / regime / arm.name / f"seed{seed}.json", arm, LANDCOVER, seed,
                         (*data_overrides(work, regime, "eval"), *lr))  # fmt: skip
    world = (f"data.train={work / 'data' / 'world' / 'train'}", f"data.eval={work / 'data' / 'world' / 'eval'}")
    for token in ("cls1", "cls2"):  # what the base knows before the shift, and which image token knows it
        out = work / "reference" / f"world_landcover_base_{token}.json"
        run_once(work, out, ARMS[0], WORLD, 0, (*world, f"image_embedding={token}"))
    if not (work / "reference" / "retrieval.json").is_file():
        overrides = (*data_overrides(work, "full", "eval"), f"optim.lr={lrs['full']['adalink']}")
        tipsv2("adapt", "--base", str(base_weights(work)), "--task", str(RETRIEVAL),
               "--out", str(work / "reference" / "survey_retrieval.safetensors"),
               "--report", str(work / "reference" / "retrieval.json"), "--threads", "1",
               *(f"--set={o}" for o in overrides))  # fmt: skip


def cost(work: Path) -> None:
    """Training: seconds per step of each method, interleaved; serving: the mixed-tenant batch benchmark."""
    if not (work / "step_time.json").is_file():
        seconds = step_seconds(ARMS, base_weights(work), LANDCOVER, data_overrides(work, "full", "val"))
        write_json(work / "step_time.json", {"seconds_per_step": seconds, "load_1m": os.getloadavg()[0]})
    if not (work / "cost.json").is_file():
        command = [sys.executable, str(ROOT / "bench" / "adapter_serving_cost.py"), "--out", str(work / "cost.json")]
        print("$ python bench/adapter_serving_cost.py --out " + str(work / "cost.json"), flush=True)
        subprocess.run(command, cwd=ROOT, check=True)


def report(work: Path) -> None:
    for regime, shards in REGIMES.items():
        summaries = {}
        for arm in ARMS:
            files = sorted((work / "runs" / regime / arm.name).glob("seed*.json"))
            if files:
                summaries[arm.name] = summarise([json.loads(p.read_text()) for p in files])
        print(f"\n## Survey land cover, {regime} ({shards}; eval split: 500 tiles, 12 classes, chance 0.083)\n")
        print(markdown(summaries, "top-1 accuracy"))
    print("\nlearning rates (val, seed 0):", (work / "tuned_lr.json").read_text().strip())
    for token in ("cls1", "cls2"):
        reference = work / "reference" / f"world_landcover_base_{token}.json"
        if reference.is_file():
            top1 = json.loads(reference.read_text())["metric"]["top1"]
            print(f"\nbase on the source world's land cover (its own colours and words), {token}: top-1 {top1:.3f}")
    retrieval = work / "reference" / "retrieval.json"
    if retrieval.is_file():
        r = json.loads(retrieval.read_text())
        print(f"\nretrieval (tipsv2 adapt, seed 0): base {r['eval']['base']}, adapted {r['eval']['adapted']}")
    if (work / "step_time.json").is_file():
        steps = json.loads((work / "step_time.json").read_text())
        print(f"\ntraining step (median of interleaved rounds, load {steps['load_1m']:.1f}):")
        for name, seconds in steps["seconds_per_step"].items():
            print(f"  {name}: {seconds * 1000:.0f} ms")
    if (work / "cost.json").is_file():
        c = json.loads((work / "cost.json").read_text())
        print(
            f"\nserving cost ({c['shape']}, {c['tenants']} tenants, rank {c['rank']}, load {c['load_average_1m']:.1f}):"
        )
        for name, ratio in c["throughput_vs_base"].items():
            print(f"  {name}: {c['sequences_per_s'][name]:.1f} sequences/s, {ratio:.3f}x of base")


STEPS = {"data": data, "base": base, "tune": tune, "runs": runs, "cost": cost, "report": report}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=[*STEPS, "all"])
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "experiments" / "adalink")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(1)
    work = args.workdir.resolve()
    for name, step in STEPS.items():
        if args.step in (name, "all"):
            step(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
