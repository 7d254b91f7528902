"""Reproduces every number of docs/experiments/tipsv2_recipe.md (TIPSv2 recipe ablations, CPU-sized).

    python bench/experiments/tipsv2_recipe.py data                  # train and eval shards (tipsv2 data synth)
    python bench/experiments/tipsv2_recipe.py runs --parallel 2     # every arm x seed: tipsv2 train, tipsv2 eval
    python bench/experiments/tipsv2_recipe.py timing                # paired step time and state size, (b)
    python bench/experiments/tipsv2_recipe.py report                # tables (mean ± std over seeds, paired deltas)
    python bench/experiments/tipsv2_recipe.py all --parallel 2      # all of the above, in order

Every training and evaluation goes through the `tipsv2` CLI; the exact commands are printed and saved with each
run (`command.txt`). Runs are skipped when their `result.json` exists, so an interrupted sweep continues.
Arms (all on training/configs/recipe_cpu.yaml): `baseline` (TIPSv2: iBOT++, head-only EMA, caption sampling),
`ibot_classic`, `full_ema`, `alt_only`, `distill` (a student trained with patch distillation from the
`baseline` run of the same seed as its frozen teacher), and the control `contrastive_only` (no self-distillation).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CONFIGS = ROOT / "training" / "configs"
BASE_CONFIG = CONFIGS / "recipe_cpu.yaml"
ARMS: dict[str, list[str]] = {
    "baseline": [],
    "ibot_classic": ["arms/ibot_classic.yaml"],
    "full_ema": ["arms/full_ema.yaml"],
    "alt_only": ["arms/alt_only.yaml"],
    "distill": ["arms/distill.yaml"],
    "contrastive_only": ["arms/contrastive_only.yaml"],
}
COMPARISONS = [  # (experiment, arm, reference arm)
    ("(a) iBOT vs iBOT++", "ibot_classic", "baseline"),
    ("(b) full EMA vs head-only EMA", "full_ema", "baseline"),
    ("(c) alt-text only vs caption sampling", "alt_only", "baseline"),
    ("(d) distilled student vs its teacher", "distill", "baseline"),
    ("control: contrastive only vs the recipe", "contrastive_only", "baseline"),
    ("control: contrastive only vs full EMA", "contrastive_only", "full_ema"),
]
METRICS = [
    "segmentation_miou",
    "segmentation_miou_shapes",
    "segmentation_miou_backgrounds",
    "classification_top1_cls1",
    "classification_top1_cls2",
    "retrieval_i2t_r1_cls1",
    "retrieval_i2t_r1_cls2",
    "retrieval_t2i_r1_cls1",
    "retrieval_t2i_r1_cls2",
    "step_s",
    "peak_memory_mb",
    "train_wall_s",
]
VARIANT = "tipsv2-tiny"
ENV = os.environ | {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def tipsv2(*args: str) -> list[str]:
    return [sys.executable, "-m", "service.tools.cli.main", *args]


def run_logged(command: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        out.write("$ " + " ".join(command) + "\n")
        out.flush()
        done = subprocess.run(command, cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        raise RuntimeError(f"command failed ({done.returncode}), see {log}: {' '.join(command)}")


# ---- data ----


def data(args: argparse.Namespace) -> None:
    work = Path(args.workdir)
    for split, count in (("train", args.train_samples), ("eval", args.eval_samples)):
        target = work / "data" / split
        if (target / "manifest.json").is_file():
            print(f"{target}: exists")
            continue
        command = tipsv2(
            "data", "synth", "--out", str(target), "--num-samples", str(count), "--samples-per-shard", "1000",
            "--image-size", "56", "--max-objects", "2", "--seed", "0", "--split", split,
            "--workers", str(args.parallel),
        )  # fmt: skip
        print("$", " ".join(command))
        run_logged(command, work / "logs" / f"data_{split}.log")


# ---- runs ----


def run_dir(work: Path, arm: str, seed: int) -> Path:
    return work / "runs" / arm / f"seed{seed}"


def final_checkpoint(run: Path) -> Path:
    found = sorted((run / "checkpoints").glob("step_*"))
    if not found:
        raise FileNotFoundError(f"no checkpoint in {run}")
    return found[-1]


def train_command(work: Path, arm: str, seed: int) -> list[str]:
    configs = [str(BASE_CONFIG), *(str(CONFIGS / c) for c in ARMS[arm])]
    command = tipsv2("train", *(x for c in configs for x in ("--config", c)))
    command += [f"run.dir={run_dir(work, arm, seed)}", f"run.seed={seed}", f"data.train={work / 'data' / 'train'}"]
    if arm == "distill":
        command.append(f"losses.patch_distill.teacher={final_checkpoint(run_dir(work, 'baseline', seed))}")
    return command


def eval_command(work: Path, run: Path) -> list[str]:
    weights = final_checkpoint(run)
    return tipsv2(
        "eval", "--weights", str(weights), "--variant", VARIANT, "--data", str(work / "data" / "eval"),
        "--output", str(run / "eval.json"),
    )  # fmt: skip


def training_stats(run: Path) -> dict[str, float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steady = records[1:] or records  # the first logged step includes warm-up effects
    return {
        "step_s": statistics.median(r["step_s"] for r in steady),
        "peak_memory_mb": max(r["peak_memory_mb"] for r in records),
        "final_loss": records[-1]["loss"],
    }


def one_run(work: Path, arm: str, seed: int) -> dict[str, Any]:
    run = run_dir(work, arm, seed)
    result_file = run / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())  # type: ignore[no-any-return]
    run.mkdir(parents=True, exist_ok=True)
    train, log = train_command(work, arm, seed), run / "run.log"
    started = time.perf_counter()
    run_logged(train, log)
    wall = time.perf_counter() - started
    evaluate = eval_command(work, run)
    run_logged(evaluate, log)
    (run / "command.txt").write_text(" ".join(train) + "\n" + " ".join(evaluate) + "\n")
    metrics = json.loads((run / "eval.json").read_text())["metrics"]
    result = {"arm": arm, "seed": seed, **metrics, **training_stats(run), "train_wall_s": wall}
    result_file.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"{arm} seed {seed}: mIoU {metrics['segmentation_miou']:.4f}, {wall:.0f} s", flush=True)
    return result


def runs(args: argparse.Namespace) -> None:
    work = Path(args.workdir)
    teachers_done = {seed: threading.Event() for seed in args.seeds}
    jobs = [(arm, seed) for arm in args.arms if arm != "distill" for seed in args.seeds]
    jobs.sort(key=lambda job: job[0] != "baseline")  # teachers first
    if "distill" in args.arms:
        jobs += [("distill", seed) for seed in args.seeds]

    def work_on(job: tuple[str, int]) -> None:
        arm, seed = job
        if arm == "distill":
            teachers_done[seed].wait()
        try:
            one_run(work, arm, seed)
        finally:
            if arm == "baseline":
                teachers_done[seed].set()

    if "baseline" not in args.arms:
        for event in teachers_done.values():
            event.set()
    with ThreadPoolExecutor(args.parallel) as pool:
        for future in [pool.submit(work_on, job) for job in jobs]:
            future.result()


# ---- timing (b) ----


def timing(args: argparse.Namespace) -> None:
    """Head-only vs full EMA, interleaved step by step on the same batches in one process (fair under load)."""
    import torch

    from training.data.pretrain import make_loader
    from training.train.build import build_data, build_parts
    from training.train.config import TrainConfig, load_config
    from training.train.distributed import init_distributed
    from training.train.loop import train_step
    from training.train.schedules import Schedules

    torch.set_num_threads(1)
    work = Path(args.workdir)
    env = init_distributed("cpu")
    parts, cfgs = {}, {}
    for mode in ("head", "full"):
        overrides = [
            f"run.dir={work / 'timing' / mode}",
            f"data.train={work / 'data' / 'train'}",
            f"teacher.ema={mode}",
        ]
        cfg = TrainConfig.from_dict(load_config([BASE_CONFIG], overrides))
        Path(cfg.run.dir or ".").mkdir(parents=True, exist_ok=True)
        cfgs[mode], parts[mode] = cfg, build_parts(cfg, env)
    cfg = cfgs["head"]
    dataset, sampler = build_data(cfg, env, parts["head"].tokenizer)
    batches = [b for _, b in zip(range(args.timing_steps + 2), make_loader(dataset, sampler, 0), strict=False)]
    schedules = Schedules(cfg.optim, cfg.teacher)
    times: dict[str, list[float]] = {"head": [], "full": []}
    for step, batch in enumerate(batches):
        for mode in ("head", "full") if step % 2 == 0 else ("full", "head"):
            result = train_step(parts[mode], parts[mode].student, batch, step, schedules.at(step), cfgs[mode])
            if step >= 2:  # the first steps allocate
                times[mode].append(result.compute_s)
    summary = {}
    for mode in ("head", "full"):
        p = parts[mode]
        trainable = sum(x.numel() for x in p.student.parameters() if x.requires_grad)
        ema = p.teacher.num_ema_parameters()
        # float32 training state: weights + gradients + two AdamW moments for what trains, plus the EMA copies
        state_mb = (4 * trainable * 4 + 4 * ema) / 2**20
        ordered = sorted(times[mode])
        summary[mode] = {
            "median_step_s": statistics.median(ordered),
            "p25_step_s": ordered[len(ordered) // 4],
            "p75_step_s": ordered[3 * len(ordered) // 4],
            "trainable_params": trainable,
            "ema_params": ema,
            "params_held": trainable + ema,
            "training_state_mb": state_mb,
        }
    out = work / "timing.json"
    out.write_text(json.dumps({"recipe_cpu": summary, "official_sizes": parameter_counts()}, indent=2) + "\n")
    print(out.read_text())


def parameter_counts() -> dict[str, dict[str, int | float]]:
    """Parameters a run holds (trainable + EMA copies) at the released sizes, with DINOv2-sized heads (meta device).

    Heads as DINOv2's defaults: MLP 2048 wide, bottleneck 256, 65,536 prototypes, separate DINO and iBOT heads.
    """
    import torch

    from training.tipsv2.model import create_model
    from training.train.student import Student, StudentSpec
    from training.train.teacher import EMATeacher

    spec = StudentSpec(head_hidden_dim=2048, head_bottleneck_dim=256, num_prototypes=65536)
    counts: dict[str, dict[str, int | float]] = {}
    for variant in ("tipsv2-b14", "tipsv2-l14", "tipsv2-g14"):
        with torch.device("meta"):
            student = Student(create_model(variant, device="meta"), spec)
            held = {mode: EMATeacher(student, mode).num_ema_parameters() for mode in ("head", "full")}  # type: ignore[arg-type]
        trainable = sum(p.numel() for p in student.parameters() if p.requires_grad)
        counts[variant] = {
            "trainable": trainable,
            "held_head_only": trainable + held["head"],
            "held_full": trainable + held["full"],
            "reduction": 1 - (trainable + held["head"]) / (trainable + held["full"]),
        }
    return counts


# ---- report ----


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def load_results(work: Path) -> dict[str, dict[int, dict[str, Any]]]:
    table: dict[str, dict[int, dict[str, Any]]] = {}
    for path in sorted((work / "runs").glob("*/seed*/result.json")):
        result = json.loads(path.read_text())
        table.setdefault(result["arm"], {})[result["seed"]] = result
    return table


def fmt(mean: float, std: float, scale: float) -> str:
    return f"{mean * scale:.2f} ± {std * scale:.2f}"


def report(args: argparse.Namespace) -> None:
    work = Path(args.workdir)
    results = load_results(work)
    lines = ["## Per arm (mean ± std over seeds; IoU, accuracy and recall in %)", ""]
    shown = [m for m in METRICS if m not in ("train_wall_s",)]
    lines.append("| arm | seeds | " + " | ".join(shown) + " |")
    lines.append("|" + "---|" * (len(shown) + 2))
    for arm in ARMS:
        if arm not in results:
            continue
        seeds = sorted(results[arm])
        cells = []
        for metric in shown:
            scale = 1.0 if metric in ("step_s", "peak_memory_mb") else 100.0
            cells.append(fmt(*mean_std([results[arm][s][metric] for s in seeds]), scale))
        lines.append(f"| {arm} | {len(seeds)} | " + " | ".join(cells) + " |")
    lines += ["", "## Paired differences (arm − reference, same seeds; mean ± std of the per-seed deltas)", ""]
    lines.append("| experiment | metric | delta | per-seed deltas | same sign in every seed | paired t |")
    lines.append("|---|---|---|---|---|---|")
    for name, arm, ref in COMPARISONS:
        if arm not in results or ref not in results:
            continue
        seeds = sorted(set(results[arm]) & set(results[ref]))
        for metric in shown:
            scale = 1.0 if metric in ("step_s", "peak_memory_mb") else 100.0
            deltas = [results[arm][s][metric] - results[ref][s][metric] for s in seeds]
            consistent = all(d > 0 for d in deltas) or all(d < 0 for d in deltas)
            per_seed = ", ".join(f"{d * scale:+.2f}" for d in deltas)
            sign = "yes" if consistent else "no"
            mean, std = mean_std(deltas)
            # paired t statistic; with 3 seeds (2 d.o.f.) |t| > 4.30 is p < 0.05 two-sided
            t = mean / (std / len(deltas) ** 0.5) if len(deltas) > 1 and std > 0 else float("nan")
            lines.append(f"| {name} | {metric} | {fmt(mean, std, scale)} | {per_seed} | {sign} | {t:+.1f} |")
    timing_file = work / "timing.json"
    if timing_file.is_file():
        everything_timed = json.loads(timing_file.read_text())
        timing_data = everything_timed["recipe_cpu"]
        lines += ["", "## (b) paired timing and state size (one process, steps interleaved)", ""]
        lines.append("| EMA | median step s | p25–p75 | trainable params | EMA params | params held | fp32 state MB |")
        lines.append("|---|---|---|---|---|---|---|")
        for mode, t in timing_data.items():
            lines.append(
                f"| {mode} | {t['median_step_s']:.3f} | {t['p25_step_s']:.3f}–{t['p75_step_s']:.3f} | "
                f"{t['trainable_params']:,} | {t['ema_params']:,} | {t['params_held']:,} | "
                f"{t['training_state_mb']:.2f} |"
            )
        lines += ["", "## (b) parameters held at the released sizes (trainable + EMA copies; DINOv2-sized heads)", ""]
        lines.append("| variant | trainable | held, head-only EMA | held, full EMA | reduction |")
        lines.append("|---|---|---|---|---|")
        for variant, c in everything_timed["official_sizes"].items():
            lines.append(
                f"| {variant} | {c['trainable'] / 1e6:.1f}M | {c['held_head_only'] / 1e6:.1f}M | "
                f"{c['held_full'] / 1e6:.1f}M | {100 * c['reduction']:.1f}% |"
            )
    text = "\n".join(lines) + "\n"
    (work / "report.md").write_text(text)
    print(text)


def everything(args: argparse.Namespace) -> None:
    data(args)
    runs(args)
    timing(args)
    report(args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("data", "runs", "timing", "report", "all"))
    parser.add_argument("--workdir", default=str(ROOT / "build" / "experiments" / "tipsv2_recipe"))
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=1, help="runs at once (each uses one thread)")
    parser.add_argument("--train-samples", type=int, default=8000)
    parser.add_argument("--eval-samples", type=int, default=300)
    parser.add_argument("--timing-steps", type=int, default=40)
    args = parser.parse_args()
    {"data": data, "runs": runs, "timing": timing, "report": report, "all": everything}[args.command](args)


if __name__ == "__main__":
    main()
