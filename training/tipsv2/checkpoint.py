"""Official-layout checkpoints: strict `.npz` loading and saving, and conversion to and from safetensors.

The official PyTorch release stores one `.npz` per tower whose keys are exactly the `state_dict` names; the text
file also holds the scalar `temperature`, which the official loader pops before `load_state_dict`. Loading here is
strict: a missing, unexpected or mis-shaped key fails with its name. `.npz` files are read with
`allow_pickle=False`, so a checkpoint can never execute code.
"""

from __future__ import annotations

import hashlib
import math
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from safetensors.numpy import load_file as load_safetensors
from safetensors.numpy import save_file as save_safetensors

from training.tipsv2.configs import get_model_config
from training.tipsv2.model import TIPSv2
from training.tipsv2.pretrained import checkpoint_files, find_checkpoint_files, find_vision_file
from training.tipsv2.vision import VisionTransformer

TEMPERATURE_KEY = "temperature"


class CheckpointError(ValueError):
    """A checkpoint does not match the model's official layout."""


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of an `.npz`, read without pickle; a file that is not an `.npz` raises CheckpointError."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise CheckpointError(f"{path} is not a readable .npz file: {exc}") from exc


# numpy.lib.format is untyped: its header readers, with the types numpy documents
_HeaderReader = Callable[[IO[bytes]], tuple[tuple[int, ...], bool, np.dtype]]
_read_magic: Callable[[IO[bytes]], tuple[int, int]] = np.lib.format.read_magic
_read_header_1_0: _HeaderReader = np.lib.format.read_array_header_1_0
_read_header_2_0: _HeaderReader = np.lib.format.read_array_header_2_0


def read_npz_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Key -> shape of every array in an `.npz`, from the `.npy` headers only (no data is read)."""
    shapes = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    version = _read_magic(member)
                    reader = _read_header_1_0 if version == (1, 0) else _read_header_2_0
                    shape, _, _ = reader(member)
                shapes[info.filename.removesuffix(".npy")] = tuple(shape)
    except (zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable .npz file: {exc}") from exc
    return shapes


def check_state_dict(module: torch.nn.Module, arrays: Mapping[str, np.ndarray], what: str) -> None:
    """Raises CheckpointError naming every missing, unexpected and mis-shaped key."""
    check_shapes(module, {k: tuple(v.shape) for k, v in arrays.items()}, what)


def check_shapes(module: torch.nn.Module, found: Mapping[str, tuple[int, ...]], what: str) -> None:
    """Raises CheckpointError naming every missing, unexpected and mis-shaped key of `found` against `module`."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [
        f"{k}: checkpoint {found[k]} vs model {expected[k]}"
        for k in sorted(set(expected) & set(found))
        if tuple(found[k]) != expected[k]
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if wrong:
        problems.append(f"shape mismatches: {'; '.join(wrong)}")
    if problems:
        raise CheckpointError(f"{what} does not match the official layout: " + " | ".join(problems))


def load_tower(module: torch.nn.Module, arrays: Mapping[str, np.ndarray], what: str, assign: bool = False) -> None:
    """Strict load of official arrays, cast to the module's dtypes. `assign=True` makes the arrays the parameters
    (no copy, works on a meta-device module): a checkpoint then needs its size in memory once, not twice."""
    check_state_dict(module, arrays, what)
    dtypes = {k: v.dtype for k, v in module.state_dict().items()}
    state = {k: torch.from_numpy(np.require(v, requirements="C")).to(dtypes[k]) for k, v in arrays.items()}
    module.load_state_dict(state, strict=True, assign=assign)


def load_official(model: TIPSv2, vision_file: str | Path, text_file: str | Path, assign: bool = False) -> TIPSv2:
    """Loads the two official `.npz` files into `model` strictly; sets the temperature from the text file."""
    load_tower(model.visual, read_npz(vision_file), str(vision_file), assign)
    text = read_npz(text_file)
    temperature = float(_pop_temperature(text, text_file))
    load_tower(model.text, text, str(text_file), assign)
    if assign:
        model.temperature = torch.nn.Parameter(torch.tensor(temperature), requires_grad=False)
    else:
        with torch.no_grad():
            model.temperature.fill_(temperature)
    return model


def _pop_temperature(text: dict[str, Any], text_file: str | Path) -> Any:
    if TEMPERATURE_KEY not in text:
        raise CheckpointError(f"{text_file} does not match the official layout: missing keys: {TEMPERATURE_KEY}")
    temperature = text.pop(TEMPERATURE_KEY)
    if math.prod(np.shape(temperature)) != 1:
        raise CheckpointError(f"{text_file}: `{TEMPERATURE_KEY}` must be a scalar, got shape {np.shape(temperature)}")
    return temperature


def verify_official(weights_dir: str | Path, variant: str) -> tuple[Path, Path]:
    """Checks the key names and shapes of a directory's official files against `variant` without loading them."""
    cfg = get_model_config(variant)
    vision, text = find_checkpoint_files(weights_dir, (cfg.checkpoint_tag, *cfg.checkpoint_tag_aliases))
    with torch.device("meta"):
        model = TIPSv2(cfg)
    check_shapes(model.visual, read_npz_shapes(vision), str(vision))
    text_shapes = read_npz_shapes(text)
    temperature = text_shapes.pop(TEMPERATURE_KEY, None)
    if temperature is None or math.prod(temperature) != 1:
        raise CheckpointError(f"{text} does not hold the scalar `{TEMPERATURE_KEY}` (shape {temperature})")
    check_shapes(model.text, text_shapes, str(text))
    return vision, text


def load_pretrained(weights_dir: str | Path, variant: str) -> TIPSv2:
    """Builds `variant` and loads `tips_v2_oss_{tag}_{vision,text}.npz` from `weights_dir` (both So400m spellings)."""
    cfg = get_model_config(variant)
    weights_dir = Path(weights_dir)
    if not weights_dir.is_dir():
        raise FileNotFoundError(f"weights directory {weights_dir} does not exist")
    vision, text = find_checkpoint_files(weights_dir, (cfg.checkpoint_tag, *cfg.checkpoint_tag_aliases))
    with torch.device("meta"):
        model = TIPSv2(cfg)  # no allocation, no random init: the checkpoint's arrays become the parameters
    model = load_official(model, vision, text, assign=True)
    model.text.reset_buffers()  # the fixed position table, computed on the CPU
    return model.eval()


def load_pretrained_vision(weights_dir: str | Path, variant: str) -> VisionTransformer:
    """The image tower alone from `tips_v2_oss_{tag}_vision.npz` (what the dense heads need: no text file read)."""
    cfg = get_model_config(variant)
    weights_dir = Path(weights_dir)
    if not weights_dir.is_dir():
        raise FileNotFoundError(f"weights directory {weights_dir} does not exist")
    path = find_vision_file(weights_dir, (cfg.checkpoint_tag, *cfg.checkpoint_tag_aliases))
    with torch.device("meta"):
        tower = VisionTransformer(cfg.vision_cfg)
    load_tower(tower, read_npz(path), str(path), assign=True)
    return tower.eval()


def tower_arrays(model: TIPSv2) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The official (vision, text) arrays of a model, float32, text including `temperature`."""
    vision = {k: v.detach().float().cpu().numpy() for k, v in model.visual.state_dict().items()}
    text = {k: v.detach().float().cpu().numpy() for k, v in model.text.state_dict().items()}
    text[TEMPERATURE_KEY] = np.asarray(float(model.temperature), dtype=np.float32)
    return vision, text


def save_official(model: TIPSv2, directory: str | Path, tag: str | None = None) -> tuple[Path, Path]:
    """Writes `tips_v2_oss_{tag}_{vision,text}.npz` in the official layout; returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = checkpoint_files(tag or model.cfg.checkpoint_tag)
    vision, text = tower_arrays(model)
    vision_path, text_path = directory / files.vision, directory / files.text
    np.savez(vision_path, **vision)  # type: ignore[arg-type]
    np.savez(text_path, **text)  # type: ignore[arg-type]
    return vision_path, text_path


def npz_to_safetensors(src: str | Path, dst: str | Path) -> Path:
    """The same arrays under the same keys (the temperature stays a scalar), as safetensors."""
    # np.require, not np.ascontiguousarray: the latter turns the 0-d temperature into shape (1,).
    save_safetensors({k: np.require(v, requirements="C") for k, v in read_npz(src).items()}, str(dst))
    return Path(dst)


def safetensors_to_npz(src: str | Path, dst: str | Path) -> Path:
    """The inverse of `npz_to_safetensors`: an `.npz` exactly at `dst` (numpy would otherwise append `.npz`)."""
    with open(dst, "wb") as out:
        np.savez(out, **load_safetensors(str(src)))  # type: ignore[arg-type]
    return Path(dst)


def convert_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Converts one tower file between `.npz` and `.safetensors`, the direction given by the two suffixes."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"{src} does not exist")
    converters = {(".npz", ".safetensors"): npz_to_safetensors, (".safetensors", ".npz"): safetensors_to_npz}
    converter = converters.get((src.suffix, dst.suffix))
    if converter is None:
        raise ValueError(f"cannot convert {src.name} to {dst.name}: use .npz -> .safetensors or .safetensors -> .npz")
    dst.parent.mkdir(parents=True, exist_ok=True)
    return converter(src, dst)


def weights_digest(*files: str | Path) -> str:
    """A short content hash of weight files: the model version in cache keys and adapter metadata."""
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]
