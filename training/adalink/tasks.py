"""Task files: what `tipsv2 adapt` trains an adapter for, as YAML (examples in `training/configs/tasks/`).

    name: survey-landcover          # the adapter's `task` metadata
    kind: classification            # classification (by label names) | retrieval (with captions)
    data: {train: DIR, eval: DIR}   # shard directories of `tipsv2 data synth` (eval optional); lists allowed
    labels: null                    # classification: label names (null: the train manifest's classes)
    label_field: label              # classification: the sample JSON key holding the label (label | background)
    templates: null                 # classification: prompt templates with '{}' (null: the 9 official TCL ones)
    caption: sentence               # retrieval: the caption source paired with each image
    image_embedding: cls1           # which image token is the image embedding: cls1 | cls2
    resolution: null                # model input side (null: the dataset's image size)
    adapter: {modalities: [image, text], rank: 16, activation: gelu_tanh}
    optim: {steps: 300, batch_size: 32, lr: 3.0e-3, min_lr: 1.0e-5, warmup_steps: 20, weight_decay: 0.0,
            clip_grad: 1.0, seed: 0}

Keys are checked against `DEFAULTS` (a typo fails naming the known keys, via the recipe's strict `merge`), and
`key.path=value` overrides apply on top, as for `tipsv2 train`. Relative data paths are relative to the working
directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.contracts.activations import NAMES as ACTIVATIONS
from training.contracts.adapter_file import MAX_RANK, MODALITIES
from training.tipsv2.prompts import TCL_TEMPLATES
from training.train.config import ConfigError, merge, parse_override, read_yaml

KINDS = ("classification", "retrieval")
LABEL_FIELDS = ("label", "background")
CAPTIONS = ("alt", "keywords", "sentence", "dense")
IMAGE_EMBEDDINGS = ("cls1", "cls2")
MAX_NAME_CHARS = 256  # the validator keeps at most this much of the `task` metadata

DEFAULTS: dict[str, Any] = {
    "name": None,
    "kind": None,
    "data": {"train": None, "eval": None},
    "labels": None,
    "label_field": "label",
    "templates": None,
    "caption": "sentence",
    "image_embedding": "cls1",
    "resolution": None,
    "adapter": {"modalities": ["image", "text"], "rank": 16, "activation": "gelu_tanh"},
    "optim": {
        "steps": 300,
        "batch_size": 32,
        "lr": 3.0e-3,
        "min_lr": 1.0e-5,
        "warmup_steps": 20,
        "weight_decay": 0.0,
        "clip_grad": 1.0,
        "seed": 0,
    },
}


@dataclass(frozen=True)
class AdapterSpec:
    modalities: tuple[str, ...]
    rank: int
    activation: str


@dataclass(frozen=True)
class OptimSpec:
    steps: int
    batch_size: int
    lr: float
    min_lr: float
    warmup_steps: int
    weight_decay: float
    clip_grad: float  # max global gradient norm; 0 disables clipping
    seed: int


@dataclass(frozen=True)
class Task:
    name: str
    kind: str
    train_data: tuple[Path, ...]
    eval_data: tuple[Path, ...]
    labels: tuple[str, ...] | None
    label_field: str
    templates: tuple[str, ...]
    caption: str
    image_embedding: str
    resolution: int | None
    adapter: AdapterSpec
    optim: OptimSpec
    raw: dict[str, Any]


def _paths(value: Any, key: str) -> tuple[Path, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        raise ConfigError(f"{key} must be a directory or a list of directories")
    return tuple(Path(v) for v in items)


def _strings(value: Any, key: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{key} must be a non-empty list of non-empty strings")
    if len(set(value)) != len(value):
        raise ConfigError(f"{key} lists a name twice")
    return tuple(value)


def _choice(value: Any, allowed: tuple[str, ...], key: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def _adapter(raw: dict[str, Any]) -> AdapterSpec:
    modalities = [raw["modalities"]] if isinstance(raw["modalities"], str) else raw["modalities"]
    if (
        not isinstance(modalities, list)
        or not modalities
        or not all(isinstance(m, str) and m in MODALITIES for m in modalities)
    ):
        raise ConfigError(f"adapter.modalities must be a non-empty list of {', '.join(MODALITIES)}")
    rank = raw["rank"]
    if not _is_int(rank) or not 1 <= rank <= MAX_RANK:
        raise ConfigError(f"adapter.rank must be an integer in [1, {MAX_RANK}], not {rank!r}")
    activation = _choice(raw["activation"], ACTIVATIONS, "adapter.activation")
    return AdapterSpec(tuple(sorted(set(modalities))), rank, activation)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optim(raw: dict[str, Any]) -> OptimSpec:
    lowest = {"steps": 1, "batch_size": 1, "warmup_steps": 0, "seed": 0}
    for key, low in lowest.items():
        if not _is_int(raw[key]) or raw[key] < low:
            raise ConfigError(f"optim.{key} must be an integer of at least {low}, not {raw[key]!r}")
    for key in ("lr", "min_lr", "weight_decay", "clip_grad"):
        if not (_is_int(raw[key]) or isinstance(raw[key], float)) or raw[key] < 0:
            raise ConfigError(f"optim.{key} must be a non-negative number, not {raw[key]!r}")
    if raw["lr"] <= 0:
        raise ConfigError("optim.lr must be positive")
    return OptimSpec(
        steps=raw["steps"],
        batch_size=raw["batch_size"],
        lr=float(raw["lr"]),
        min_lr=float(raw["min_lr"]),
        warmup_steps=raw["warmup_steps"],
        weight_decay=float(raw["weight_decay"]),
        clip_grad=float(raw["clip_grad"]),
        seed=raw["seed"],
    )


def task_from_dict(raw: dict[str, Any]) -> Task:
    """A validated Task from a merged task mapping; ConfigError says what is wrong."""
    name = raw["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise ConfigError(f"name is required: a non-empty string of at most {MAX_NAME_CHARS} characters")
    kind = _choice(raw["kind"], KINDS, "kind")
    train = _paths(raw["data"]["train"], "data.train")
    if not train:
        raise ConfigError("data.train is required (a shard directory written by `tipsv2 data synth`)")
    templates = _strings(raw["templates"], "templates") or TCL_TEMPLATES
    if any("{}" not in t for t in templates):
        raise ConfigError("every template must contain '{}' (where the label name goes)")
    resolution = raw["resolution"]
    if resolution is not None and (not isinstance(resolution, int) or resolution < 14):
        raise ConfigError(f"resolution must be null or an integer of at least one patch, not {resolution!r}")
    return Task(
        name=name,
        kind=kind,
        train_data=train,
        eval_data=_paths(raw["data"]["eval"], "data.eval"),
        labels=_strings(raw["labels"], "labels"),
        label_field=_choice(raw["label_field"], LABEL_FIELDS, "label_field"),
        templates=tuple(templates),
        caption=_choice(raw["caption"], CAPTIONS, "caption"),
        image_embedding=_choice(raw["image_embedding"], IMAGE_EMBEDDINGS, "image_embedding"),
        resolution=resolution,
        adapter=_adapter(raw["adapter"]),
        optim=_optim(raw["optim"]),
        raw=raw,
    )


def load_task(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Task:
    """The task of a YAML file (or of the defaults alone) with `key.path=value` overrides applied."""
    raw = DEFAULTS
    try:
        if path is not None:
            raw = merge(raw, read_yaml(path))
        for item in overrides:
            raw = merge(raw, parse_override(item))
        return task_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"task {path or '(defaults)'}: {exc}") from exc
