"""Builds a run's parts from its config: tokenizer, model, student, teachers, objective, optimizer, data."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from training.data.pretrain import PretrainDataset, StepBatchSampler
from training.data.vocabulary import caption_corpus
from training.tipsv2.checkpoint import load_official, load_tower, read_npz
from training.tipsv2.configs import get_model_config
from training.tipsv2.model import TIPSv2, create_model
from training.tipsv2.pretrained import TOKENIZER_FILE, find_checkpoint_files
from training.tipsv2.tokenizer import Tokenizer, train_tokenizer
from training.train.config import TrainConfig
from training.train.distributed import DistEnv
from training.train.objective import Objective
from training.train.optim import build_optimizer
from training.train.student import Student, StudentSpec
from training.train.teacher import EMATeacher, FrozenTeacher

log = logging.getLogger(__name__)


@dataclass
class Parts:
    student: Student
    teacher: EMATeacher
    objective: Objective
    distill: FrozenTeacher | None
    optimizer: torch.optim.AdamW
    tokenizer: Path


def resolve_tokenizer(cfg: TrainConfig, run_dir: Path, is_main: bool) -> Path:
    """The configured tokenizer; else the one next to the initial weights; else the local one (built once)."""
    if cfg.model.tokenizer:
        return Path(cfg.model.tokenizer)
    for source in (cfg.model.init_from, cfg.model.init_text_from):
        if source and (Path(source) / TOKENIZER_FILE).is_file():
            return Path(source) / TOKENIZER_FILE
    path = run_dir / TOKENIZER_FILE
    if is_main and not path.is_file():
        vocab = get_model_config(cfg.model.variant).text_cfg.vocab_size
        train_tokenizer(caption_corpus(seed=0), path, vocab)  # the same corpus as `tipsv2 model build-local`
    return path


def check_tokenizer(path: Path, model: TIPSv2) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer {path} does not exist")
    if Tokenizer(path).vocab_size > model.cfg.text_cfg.vocab_size:
        raise ValueError(f"tokenizer {path} has more ids than {model.cfg.name}'s token table")


def build_model(cfg: TrainConfig) -> TIPSv2:
    """A seeded model, optionally starting from official-layout weights (all of them, or the text tower only)."""
    model = create_model(cfg.model.variant, seed=cfg.run.seed)
    tags = (model.cfg.checkpoint_tag, *model.cfg.checkpoint_tag_aliases)
    if cfg.model.init_from:
        load_official(model, *find_checkpoint_files(cfg.model.init_from, tags))
    if cfg.model.init_text_from:
        _, text_file = find_checkpoint_files(cfg.model.init_text_from, tags)
        arrays = read_npz(text_file)
        temperature = float(arrays.pop("temperature"))
        load_tower(model.text, arrays, str(text_file))
        with torch.no_grad():
            model.temperature.fill_(temperature)
    return model


def build_student(cfg: TrainConfig, model: TIPSv2, distill_dim: int | None) -> Student:
    started_from_weights = bool(cfg.model.init_from or cfg.model.init_text_from)
    spec = StudentSpec(
        dino=cfg.losses.on("dino"),
        ibot=cfg.losses.on("ibot"),
        contrastive=cfg.losses.on("contrastive_cls1") or cfg.losses.on("contrastive_cls2"),
        head_hidden_dim=cfg.heads.hidden_dim,
        head_bottleneck_dim=cfg.heads.bottleneck_dim,
        num_prototypes=cfg.heads.num_prototypes,
        shared_head=cfg.heads.shared,
        dino_token=cfg.heads.dino_token,
        # A model loaded from weights keeps its own temperature as the starting point.
        temperature_init=float(model.temperature) if started_from_weights else cfg.model.temperature_init,
        temperature_min=cfg.model.temperature_min,
        learn_temperature=cfg.model.learn_temperature,
        freeze_text=cfg.model.freeze_text,
        distill_dim=distill_dim,
    )
    student = Student(model, spec)
    generator = torch.Generator().manual_seed(cfg.run.seed + 1)
    student.init_heads(generator)
    if student.distill_projector is not None:
        torch.nn.init.trunc_normal_(student.distill_projector.weight, std=0.02, generator=generator)
        torch.nn.init.zeros_(student.distill_projector.bias)
    return student


def build_parts(cfg: TrainConfig, env: DistEnv) -> Parts:
    run_dir = Path(cfg.run.dir or ".")
    model = build_model(cfg)
    tokenizer = resolve_tokenizer(cfg, run_dir, env.is_main)
    distill = None
    if cfg.losses.on("patch_distill"):
        options = cfg.losses.patch_distill
        distill = FrozenTeacher(options["teacher"], options.get("teacher_variant") or cfg.model.variant).to(env.device)
    student = build_student(cfg, model, distill.embed_dim if distill else None).to(env.device)
    teacher = EMATeacher(student, cfg.teacher.ema).to(env.device)  # type: ignore[arg-type]
    objective = Objective(cfg.losses, cfg.heads.num_prototypes).to(env.device)
    log.info(
        "student: %.2fM trainable parameters; EMA teacher (%s): %.2fM",
        sum(p.numel() for p in student.parameters() if p.requires_grad) / 1e6,
        cfg.teacher.ema,
        teacher.num_ema_parameters() / 1e6,
    )
    return Parts(student, teacher, objective, distill, build_optimizer(student, cfg.optim), tokenizer)


def build_data(cfg: TrainConfig, env: DistEnv, tokenizer: Path) -> tuple[PretrainDataset, StepBatchSampler]:
    train = cfg.data.train
    dirs = [train] if isinstance(train, str) else list(train or ())
    dataset = PretrainDataset(dirs, tokenizer, cfg.views, cfg.texts, cfg.run.seed)
    sampler = StepBatchSampler(
        len(dataset), cfg.optim.batch_size, cfg.optim.steps, cfg.run.seed, env.rank, env.world_size
    )
    return dataset, sampler


def epochs(cfg: TrainConfig, num_samples: int) -> float:
    return cfg.optim.steps * cfg.optim.batch_size / max(num_samples, 1)
