"""`tipsv2 adapt`: train an AdaLink adapter for a task on a frozen base model and write the adapter file.

1. Load the base (official-layout `.npz` files + `tokenizer.model`), its digest (`weights_digest(vision, text)`:
   the model_id the server runs, which the adapter's `base_hash` must equal) and a checksum of its weights.
2. Load the task's examples from its shards; train fresh adapters (zero `up`: step 0 is the base model).
3. Check that the base checksum has not changed, then write the adapter with full metadata through
   `format.save_adapter`, which validates the bytes exactly as the server will before writing them.
4. With eval data in the task, score the base and the adapted model on it (the task metric).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from training.adalink.adapted import AdaptedTIPSv2
from training.adalink.checksum import state_checksum
from training.adalink.evaluate import evaluate
from training.adalink.task_data import load_task_data
from training.adalink.tasks import Task, load_task
from training.adalink.train import fit
from training.adalink.tuners import prepare
from training.contracts.adapter_file import AdapterInfo, build_metadata, save_adapter, validate_adapter
from training.tipsv2.checkpoint import load_pretrained, weights_digest
from training.tipsv2.configs import get_model_config, list_models
from training.tipsv2.model import TIPSv2
from training.tipsv2.pretrained import TOKENIZER_FILE, find_checkpoint_files
from training.tipsv2.tokenizer import Tokenizer

log = logging.getLogger(__name__)


class BaseModifiedError(RuntimeError):
    """Adapter training changed a base weight: a bug, and the adapter must not be written."""


@dataclass(frozen=True)
class Base:
    model: TIPSv2
    tokenizer: Tokenizer
    name: str  # the registered variant, e.g. tipsv2-tiny
    digest: str  # weights_digest(vision, text): the served model_id


def infer_variant(weights_dir: str | Path) -> str:
    """The registered variant whose official file names are in `weights_dir`."""
    for name in list_models():
        cfg = get_model_config(name)
        try:
            find_checkpoint_files(weights_dir, (cfg.checkpoint_tag, *cfg.checkpoint_tag_aliases))
        except FileNotFoundError:
            continue
        return name
    raise FileNotFoundError(f"{weights_dir} holds no TIPSv2 checkpoint of a known variant ({', '.join(list_models())})")


def resolve_device(name: str) -> torch.device:
    """`auto`: this machine's GPU if it has one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but torch sees no CUDA device here")
    return torch.device(name)


def load_base(weights_dir: str | Path, variant: str | None = None, device: str = "cpu") -> Base:
    weights_dir = Path(weights_dir)
    if not weights_dir.is_dir():
        raise FileNotFoundError(f"base weights directory {weights_dir} does not exist")
    cfg = get_model_config(variant or infer_variant(weights_dir))
    vision, text = find_checkpoint_files(weights_dir, (cfg.checkpoint_tag, *cfg.checkpoint_tag_aliases))
    tokenizer_file = weights_dir / TOKENIZER_FILE
    if not tokenizer_file.is_file():
        raise FileNotFoundError(f"{tokenizer_file} not found: adapters train with the base model's tokenizer")
    model = load_pretrained(weights_dir, cfg.name).to(resolve_device(device))
    return Base(model, Tokenizer(tokenizer_file, cfg.text_cfg.max_len), cfg.name, weights_digest(vision, text))


@dataclass
class AdaptResult:
    adapter: str
    info: dict[str, Any]  # the validated file's metadata, size and sha256
    base_checksum: str  # the same before and after training (checked)
    trainable_parameters: int
    train_seconds: float
    final_loss: float
    eval: dict[str, dict[str, float]]  # {"base": metrics, "adapted": metrics} when the task has eval data

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_adapter(base: Base, task: Task) -> tuple[AdaptedTIPSv2, dict[str, Any]]:
    """Trains the task's adapters on `base`; returns the adapted model and the training facts. Raises
    BaseModifiedError if any base weight changed."""
    before = state_checksum(base.model)
    data = load_task_data(task, task.train_data)
    log.info("%s: %d training examples at %d px", task.name, len(data), data.resolution)
    spec = task.adapter
    tuned = prepare("adalink", base.model, spec.modalities, spec.rank, spec.activation, task.optim.seed)
    report = fit(tuned, task, data, base.tokenizer)
    after = state_checksum(base.model)
    if after != before:
        raise BaseModifiedError(f"base weights changed during adapter training ({before[:12]} -> {after[:12]})")
    facts = {
        "base_checksum": before,
        "trainable_parameters": tuned.num_trainable,
        "train_seconds": report.seconds,
        "final_loss": report.final_loss,
        "label_names": data.label_names,
    }
    assert isinstance(tuned.model, AdaptedTIPSv2)
    return tuned.model, facts


def write_adapter(model: AdaptedTIPSv2, base: Base, task: Task, out: str | Path) -> AdapterInfo:
    spec = task.adapter
    metadata = build_metadata(
        base_model=base.name,
        base_hash=base.digest,
        modalities=spec.modalities,
        rank=spec.rank,
        dim=base.model.cfg.embed_dim,
        activation=spec.activation,
        task=task.name,
        description=f"tipsv2 adapt: {task.kind}, {task.optim.steps} steps, seed {task.optim.seed}",
    )
    arrays = {k: v.numpy() for k, v in model.adapter_arrays().items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = save_adapter(out, arrays, metadata)
    return validate_adapter(path.read_bytes(), base_hash=base.digest, dim=base.model.cfg.embed_dim)


def adapt(
    weights_dir: str | Path,
    task_file: str | Path,
    out: str | Path,
    overrides: Iterable[str] = (),
    variant: str | None = None,
    device: str = "cpu",
) -> AdaptResult:
    task = load_task(task_file, overrides)
    base = load_base(weights_dir, variant, device)
    model, facts = train_adapter(base, task)
    info = write_adapter(model, base, task, out)
    scores: dict[str, dict[str, float]] = {}
    if task.eval_data:
        data = load_task_data(task, task.eval_data, facts["label_names"] if task.kind == "classification" else None)
        scores = {
            "base": evaluate(base.model, base.tokenizer, task, data),
            "adapted": evaluate(model, base.tokenizer, task, data),
        }
    return AdaptResult(
        adapter=str(out),
        info=asdict(info),
        base_checksum=facts["base_checksum"],
        trainable_parameters=facts["trainable_parameters"],
        train_seconds=facts["train_seconds"],
        final_loss=facts["final_loss"],
        eval=scores,
    )
