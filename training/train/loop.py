"""The training loop: `train(config)` runs a whole run, single process or under `torchrun`, and resumes by itself.

A step: schedules -> student forward (DDP) -> teacher forward (no grad) -> losses -> backward -> (last-layer
freeze) -> clip -> AdamW -> EMA. A run directory that already holds a checkpoint continues from its newest one, so
a restarted process (or Kubernetes pod) picks up where the last checkpoint left off.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from training.data.pretrain import Batch, make_loader
from training.losses import total_loss
from training.train.build import Parts, build_data, build_parts, check_tokenizer, epochs
from training.train.checkpointing import checkpoint_dir, latest_checkpoint, load_checkpoint, save_checkpoint
from training.train.config import TrainConfig, save_config
from training.train.distributed import DistEnv, all_reduce_sum, init_distributed, shutdown
from training.train.metrics import MetricsLogger, peak_memory_mb, progress_bar
from training.train.optim import apply_schedule
from training.train.schedules import Schedules, StepValues

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    terms: dict[str, torch.Tensor]  # detached scalars: every *_loss term, loss, grad_norm, temperature
    compute_s: float


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast on CUDA only: CPU training stays float32 (and bit-for-bit reproducible)."""
    if device.type == "cuda" and precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(
    parts: Parts, forward: nn.Module, batch: Batch, step: int, values: StepValues, cfg: TrainConfig
) -> StepResult:
    started = time.perf_counter()
    device = batch.global_views.device
    apply_schedule(parts.optimizer, values.lr, values.weight_decay)
    selection = parts.objective.select_tokens(batch.masks)
    index = None if selection is None else selection.index
    with autocast(device, cfg.run.precision):
        student_out = forward(batch, index)
        teacher_out = parts.teacher(parts.student, batch, student_out, index)
        target = parts.distill(batch.global_views) if parts.distill is not None else None
    terms = parts.objective(student_out, teacher_out, selection, values.teacher_temp, cfg.heads.dino_token, target)
    loss = total_loss(terms)
    if not torch.isfinite(loss):
        values_now = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
        raise FloatingPointError(f"step {step}: the loss is not finite ({values_now})")
    parts.optimizer.zero_grad(set_to_none=True)
    torch.autograd.backward(loss)
    if step < cfg.heads.freeze_last_layer_steps:  # DINO: let the prototypes settle before they move
        for head in (parts.student.dino_head, parts.student.ibot_head):
            if head is not None:
                head.last_layer.grad = None
    params = [p for p in parts.student.parameters() if p.grad is not None]
    max_norm = cfg.optim.clip_grad if cfg.optim.clip_grad > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    parts.optimizer.step()
    parts.teacher.update(parts.student, values.momentum)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    scalars = {k: v.detach() for k, v in terms.items()}
    scalars |= {"loss": loss.detach(), "grad_norm": grad_norm.detach(), "temperature": student_out.temperature.detach()}
    return StepResult(scalars, time.perf_counter() - started)


def reduce_for_log(terms: dict[str, torch.Tensor], world_size: int) -> dict[str, float]:
    """Means over ranks, in one collective."""
    names = sorted(terms)
    stacked = torch.stack([terms[n].float() for n in names])
    stacked = all_reduce_sum(stacked) / world_size
    return {n: float(v) for n, v in zip(names, stacked.tolist(), strict=True)}


def resume(cfg: TrainConfig, parts: Parts) -> int:
    """Loads the run's newest checkpoint if there is one; returns the step to continue from."""
    path = latest_checkpoint(cfg.run.dir or ".")
    if path is None:
        return 0
    state = load_checkpoint(path, parts.student, parts.teacher, parts.objective, parts.optimizer)
    log.info("resumed from %s (step %d)", path, state["step"])
    return int(state["step"])


def wrap_ddp(student: nn.Module, env: DistEnv) -> nn.Module:
    if env.world_size == 1:
        return student
    device_ids = [env.device.index] if env.device.type == "cuda" else None
    # The only buffer is the text tower's fixed position table: nothing to broadcast.
    return DistributedDataParallel(student, device_ids=device_ids, broadcast_buffers=False)


def configure(cfg: TrainConfig) -> None:
    if cfg.run.num_threads > 0:
        torch.set_num_threads(cfg.run.num_threads)
    torch.manual_seed(cfg.run.seed)


def barrier(env: DistEnv) -> None:
    if env.world_size > 1:
        dist.barrier()


def batches(loader: torch.utils.data.DataLoader, device: torch.device) -> Iterator[Batch]:  # type: ignore[type-arg]
    for batch in loader:
        yield batch.to(device)


def step_record(
    result: StepResult, values: StepValues, done: int, data_s: float, cfg: TrainConfig, env: DistEnv
) -> dict[str, float]:
    """One metrics.jsonl line: loss terms (means over ranks), schedule values, timing and memory."""
    record = reduce_for_log(result.terms, env.world_size)
    record |= {"step": done, "lr": values.lr, "weight_decay": values.weight_decay}
    record |= {"momentum": values.momentum, "teacher_temp": values.teacher_temp}
    record |= {"step_s": result.compute_s, "data_s": data_s, "peak_memory_mb": peak_memory_mb(env.device)}
    record |= {"samples_per_s": cfg.optim.batch_size / max(result.compute_s + data_s, 1e-9)}
    return record


def checkpoint(cfg: TrainConfig, env: DistEnv, parts: Parts, done: int) -> None:
    """Rank 0 writes; every rank waits, so no rank runs ahead of a checkpoint it may have to resume from."""
    if env.is_main:
        save_checkpoint(
            cfg.run.dir or ".", done, parts.student, parts.teacher, parts.objective, parts.optimizer,
            parts.tokenizer, {"world_size": env.world_size}, cfg.run.keep_checkpoints,
        )  # fmt: skip
    barrier(env)


def run(cfg: TrainConfig, env: DistEnv) -> Path:
    configure(cfg)
    run_dir = Path(cfg.run.dir or ".")
    if env.is_main:
        save_config(cfg.raw, run_dir)
    parts = build_parts(cfg, env)
    barrier(env)  # rank 0 may have just built the tokenizer
    check_tokenizer(parts.tokenizer, parts.student.model)
    start = resume(cfg, parts)
    forward = wrap_ddp(parts.student, env)
    dataset, sampler = build_data(cfg, env, parts.tokenizer)
    loader = batches(make_loader(dataset, sampler, start, cfg.data.num_workers), env.device)
    schedules = Schedules(cfg.optim, cfg.teacher)
    logger = MetricsLogger(run_dir, enabled=env.is_main)
    total = cfg.optim.steps
    log.info("%d samples, %.2f epochs, %d steps from step %d", len(dataset), epochs(cfg, len(dataset)), total, start)
    bar = progress_bar(total, start, enabled=env.is_main and cfg.run.progress)
    waited = time.perf_counter()
    for step, batch in zip(range(start, total), loader, strict=False):
        data_s = time.perf_counter() - waited
        values = schedules.at(step)
        result = train_step(parts, forward, batch, step, values, cfg)
        done = step + 1
        if done % cfg.run.log_every == 0 or done == total:
            record = step_record(result, values, done, data_s, cfg, env)
            logger.log(record)
            bar.set_postfix(loss=f"{record['loss']:.4f}")
        bar.update(1)
        if done % cfg.run.checkpoint_every == 0 or done == total:
            checkpoint(cfg, env, parts, done)
        waited = time.perf_counter()
    bar.close()
    logger.close()
    return checkpoint_dir(run_dir, total)


def train(cfg: TrainConfig) -> Path:
    """Runs (or resumes) the configured run; returns its final checkpoint folder."""
    env = init_distributed(cfg.run.device)
    try:
        return run(cfg, env)
    finally:
        shutdown()
