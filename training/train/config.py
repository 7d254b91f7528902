"""Configs as YAML defaults + small override files + `key.path=value` overrides (dinov2 / OmegaConf style).

Merging is strict: an override may only name keys the defaults define (a typo fails with the known keys listed).
The merged dict is saved to the run directory and read back into typed sections, so a run is reproducible from its
own `config.yaml` alone.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from training.data.pretrain import TextSpec, ViewSpec, spec_from_dict
from training.train.objective import LossSpec

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
CONFIG_FILE = "config.yaml"


class ConfigError(ValueError):
    """A config file or override does not fit the defaults."""


class _Loader(yaml.SafeLoader):
    """YAML with 1.2-style floats: PyYAML (YAML 1.1) reads `3e-4` as a *string*, a classic learning-rate bug."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def merge(base: dict[str, Any], override: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """`base` updated by `override`, recursively; keys absent from `base` are refused."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in out:
            known = ", ".join(sorted(out)) or "(none)"
            raise ConfigError(f"unknown config key {path!r}; known at this level: {known}")
        if isinstance(out[key], dict) and isinstance(value, Mapping):
            out[key] = merge(out[key], value, path)
        elif isinstance(out[key], dict):
            raise ConfigError(f"config key {path!r} is a section; set its keys instead ({', '.join(out[key])})")
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(item: str) -> dict[str, Any]:
    """`optim.lr=3e-4` -> {"optim": {"lr": 0.0003}}; the value is parsed as YAML (`[a, b]`, `null`, `true`)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} is not key.path=value")
    value: Any = parse_yaml(raw) if raw.strip() else None
    for part in reversed(key.strip().split(".")):
        value = {part: value}
    return value  # type: ignore[no-any-return]


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    loaded = parse_yaml(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level")
    return loaded


def load_config(
    files: Iterable[str | Path] = (), overrides: Iterable[str] = (), defaults: str | Path = DEFAULT_CONFIG
) -> dict[str, Any]:
    """Defaults, then each file, then each `key=value` override, in order."""
    config = read_yaml(defaults)
    for path in files:
        try:
            config = merge(config, read_yaml(path))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    for item in overrides:
        config = merge(config, parse_override(item))
    return config


def save_config(config: Mapping[str, Any], run_dir: str | Path) -> Path:
    path = Path(run_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    return path


def _section(cls: type[Any], raw: Mapping[str, Any], name: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(raw) - known
    missing = {f.name for f in fields(cls)} - set(raw)
    if unknown or missing:
        raise ConfigError(f"config section {name!r}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


@dataclass(frozen=True)
class RunCfg:
    dir: str | None
    seed: int
    device: str
    precision: str
    num_threads: int
    log_every: int
    checkpoint_every: int
    keep_checkpoints: int
    progress: bool


@dataclass(frozen=True)
class ModelSection:
    variant: str
    init_from: str | None
    init_text_from: str | None
    tokenizer: str | None
    freeze_text: bool
    temperature_init: float
    temperature_min: float
    learn_temperature: bool


@dataclass(frozen=True)
class DataCfg:
    train: str | tuple[str, ...] | None
    num_workers: int


@dataclass(frozen=True)
class HeadsCfg:
    hidden_dim: int
    bottleneck_dim: int
    num_prototypes: int
    shared: bool
    dino_token: str
    freeze_last_layer_steps: int


@dataclass(frozen=True)
class TeacherCfg:
    ema: str
    momentum: float
    final_momentum: float
    temp: float
    warmup_temp: float
    warmup_temp_steps: int


@dataclass(frozen=True)
class OptimCfg:
    steps: int
    batch_size: int
    lr: float
    min_lr: float
    warmup_steps: int
    weight_decay: float
    final_weight_decay: float
    betas: tuple[float, float]
    clip_grad: float


@dataclass(frozen=True)
class TrainConfig:
    run: RunCfg
    model: ModelSection
    data: DataCfg
    views: ViewSpec
    texts: TextSpec
    heads: HeadsCfg
    losses: LossSpec
    teacher: TeacherCfg
    optim: OptimCfg
    raw: dict[str, Any]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        expected = {f.name for f in fields(cls)} - {"raw"}
        if set(raw) != expected:
            raise ConfigError(f"config sections {sorted(raw)} differ from {sorted(expected)}")
        cfg = cls(
            run=_section(RunCfg, raw["run"], "run"),
            model=_section(ModelSection, raw["model"], "model"),
            data=_section(DataCfg, raw["data"], "data"),
            views=spec_from_dict(ViewSpec, raw["views"]),
            texts=spec_from_dict(TextSpec, raw["texts"]),
            heads=_section(HeadsCfg, raw["heads"], "heads"),
            losses=LossSpec.from_dict(raw["losses"]),
            teacher=_section(TeacherCfg, raw["teacher"], "teacher"),
            optim=_section(OptimCfg, raw["optim"], "optim"),
            raw=copy.deepcopy(raw),
        )
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if not self.run.dir:
            raise ConfigError("run.dir is required (the run's output directory)")
        if not self.data.train:
            raise ConfigError("data.train is required (a shard directory from `tipsv2 data synth`)")
        if self.optim.steps <= 0 or self.optim.batch_size <= 0:
            raise ConfigError("optim.steps and optim.batch_size must be positive")
        if self.losses.on("patch_distill") and not self.losses.patch_distill.get("teacher"):
            raise ConfigError("losses.patch_distill.teacher is required when its weight is > 0")
        if self.run.precision not in ("bf16", "fp32"):
            raise ConfigError(f"run.precision must be bf16 or fp32, not {self.run.precision!r}")
