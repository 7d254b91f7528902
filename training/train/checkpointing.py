"""Checkpoints a trained model serves from, and a run resumes from, bit for bit.

`<run>/checkpoints/step_0001000/` holds
- `tips_v2_oss_{tag}_{vision,text}.npz`: the towers in the official TIPSv2 layout (`save_official`), temperature
  included, so the folder loads with `load_pretrained`, exports and serves like an official release;
- `tokenizer.model`: the tokenizer the text tower was trained with (`tipsv2 encode --weights` needs it there);
- `training_state.pt`: everything else a resumed run needs: heads, learned log-temperature, EMA teacher, loss
  centres, optimizer moments, RNG states and the step (the data position is a function of the step).
A checkpoint is written to a temporary folder and renamed into place, so a crash never leaves a half checkpoint.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from training.tipsv2.checkpoint import load_official, save_official
from training.tipsv2.pretrained import TOKENIZER_FILE, checkpoint_files
from training.train.student import Student

CHECKPOINTS = "checkpoints"
STATE_FILE = "training_state.pt"
STATE_VERSION = 1


def checkpoint_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step_{step:07d}"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step_*") if (p / STATE_FILE).is_file())


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def capture_rng() -> dict[str, Any]:
    """Global RNG states as tensors and plain tuples, so the state file loads with `weights_only=True`."""
    legacy = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True))
    kind, keys, pos, has_gauss, cached = legacy
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def training_only_state(student: Student) -> dict[str, torch.Tensor]:
    """The student's state outside the TIPSv2 towers (those live in the official `.npz` files)."""
    return {k: v for k, v in student.state_dict().items() if not k.startswith("model.")}


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    student: Student,
    teacher: nn.Module,
    objective: nn.Module,
    optimizer: torch.optim.Optimizer,
    tokenizer: str | Path,
    extra: dict[str, Any] | None = None,
    keep: int = 0,
) -> Path:
    """Writes the checkpoint after `step` completed steps; keeps only the newest `keep` (0: all)."""
    final = checkpoint_dir(run_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_official(student.export_temperature(), tmp)
    shutil.copyfile(tokenizer, tmp / TOKENIZER_FILE)
    state = {
        "version": STATE_VERSION,
        "step": step,
        "student": training_only_state(student),
        "teacher": teacher.state_dict(),
        "objective": objective.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": capture_rng(),
        "extra": extra or {},
    }
    torch.save(state, tmp / STATE_FILE)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    if keep > 0:
        for old in list_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(
    path: str | Path,
    student: Student,
    teacher: nn.Module,
    objective: nn.Module,
    optimizer: torch.optim.Optimizer,
) -> dict[str, Any]:
    """Restores a run's state from a checkpoint folder in place; returns the saved state (its `step`, `extra`)."""
    path = Path(path)
    files = checkpoint_files(student.model.cfg.checkpoint_tag)
    load_official(student.model, path / files.vision, path / files.text)
    device = next(student.parameters()).device
    state = torch.load(path / STATE_FILE, map_location=device, weights_only=True)  # never runs pickled code
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"{path / STATE_FILE}: training state version {state.get('version')} != {STATE_VERSION}")
    missing, unexpected = student.load_state_dict(state["student"], strict=False)
    missing = [k for k in missing if not k.startswith("model.")]
    if missing or unexpected:
        raise ValueError(f"{path}: training state does not fit this run (missing {missing}, unexpected {unexpected})")
    teacher.load_state_dict(state["teacher"])
    objective.load_state_dict(state["objective"])
    optimizer.load_state_dict(state["optimizer"])
    restore_rng(state["rng"])
    loaded: dict[str, Any] = state
    return loaded
