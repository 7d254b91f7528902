"""Official DPT decoder checkpoints: strict loading of the Scenic/Flax `.zip` files, header-only checks, and writing.

The release ships each decoder as `tips_v2_{tag}_{task}_dpt.zip`: a zip of `.npy` arrays (what `np.load` reads as an
`.npz`) keyed by '/'-joined Flax paths such as `decoder/dpt/reassemble_blocks/out_projection_0/kernel`. The
conversion follows the official `load_decoder_weights` (`pytorch/decoders.py`):

- Conv kernels (H, W, Cin, Cout) -> (Cout, Cin, H, W); Dense kernels (in, out) -> (out, in); biases as they are.
- ConvTranspose kernels (H, W, Cin, Cout) -> (Cin, Cout, H, W) *and* flipped 180 degrees: Flax's transposed conv
  (`lax.conv_transpose`, transpose_kernel=False) correlates the stride-dilated input with the kernel as stored,
  torch's scatters the kernel, so the same output needs the kernel reversed.
- The optional `decoder/` prefix is dropped; a file without the `dpt/` level holds the DPT body at the top.
- Fusion block 0 has one residual unit (`PreActResidualConvUnit_0`, torch `main_unit`); blocks 1-3 have two
  (`_0` -> `residual_unit`, `_1` -> `main_unit`); the 1x1 output conv is `Conv_0` (or `out_conv`).
- The task head is a Dense named `pixel_segmentation`, `segmentation_head`, `pixel_depth_classif`,
  `pixel_depth_regress` or `pixel_normals`, at the top level.

Unlike the official loader, which ignores keys it does not know and fills missing ones silently only to fail later in
`load_state_dict`, loading here is strict on the file's own names: every missing, unexpected or mis-shaped key is
named. Files are read with `allow_pickle=False`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from training.tipsv2.checkpoint import CheckpointError, read_npz, read_npz_shapes
from training.tipsv2.configs import get_model_config
from training.tipsv2.dpt import DenseDecoder, create_decoder
from training.tipsv2.heads import Task
from training.tipsv2.pretrained import find_decoder_file

Kind = Literal["conv", "conv_transpose", "dense", "bias"]
HEAD_NAMES = ("pixel_segmentation", "segmentation_head", "pixel_depth_classif", "pixel_depth_regress", "pixel_normals")
SAVED_HEAD_NAME: dict[Task, str] = {
    "segmentation": "pixel_segmentation",
    "depth": "pixel_depth_classif",
    "normals": "pixel_normals",
}
_HEAD = "<head>"  # placeholder for whichever head name a file uses


@dataclass(frozen=True)
class Param:
    flax: str  # canonical Flax path: no `decoder/` prefix, the DPT body under `dpt/`, the head under `<head>/`
    torch: str  # the official PyTorch `state_dict` name
    kind: Kind


def param_table() -> list[Param]:
    """Every decoder parameter: canonical Flax path, PyTorch name, and how the array converts."""
    table: list[Param] = []

    def add(flax: str, name: str, kind: Kind, bias: bool = True) -> None:
        table.append(Param(f"{flax}/kernel", f"{name}.weight", kind))
        if bias:
            table.append(Param(f"{flax}/bias", f"{name}.bias", "bias"))

    rb, tr = "dpt/reassemble_blocks", "dpt.reassemble"
    for i in range(4):
        add(f"{rb}/out_projection_{i}", f"{tr}.out_projections.{i}", "conv")
        add(f"{rb}/readout_projects_{i}", f"{tr}.readout_projects.{i}", "dense")
    add(f"{rb}/resize_layers_0", f"{tr}.resize_layers.0", "conv_transpose")
    add(f"{rb}/resize_layers_1", f"{tr}.resize_layers.1", "conv_transpose")
    add(f"{rb}/resize_layers_3", f"{tr}.resize_layers.3", "conv")  # resize_layers_2 is the identity
    for i in range(4):
        add(f"dpt/convs_{i}", f"dpt.convs.{i}", "conv", bias=False)
    for i in range(4):
        units = ["main_unit"] if i == 0 else ["residual_unit", "main_unit"]  # Flax numbers them in this order
        for n, unit in enumerate(units):
            for conv in ("conv1", "conv2"):
                flax = f"dpt/fusion_blocks_{i}/PreActResidualConvUnit_{n}/{conv}"
                add(flax, f"dpt.fusion_blocks.{i}.{unit}.{conv}", "conv", bias=False)
        add(f"dpt/fusion_blocks_{i}/Conv_0", f"dpt.fusion_blocks.{i}.out_conv", "conv")
    add("dpt/project", "dpt.project", "conv")
    add(f"{_HEAD}", "head", "dense")
    return table


def to_torch(array: np.ndarray, kind: Kind) -> np.ndarray:
    if kind == "conv":
        return array.transpose(3, 2, 0, 1)
    if kind == "conv_transpose":
        return array[::-1, ::-1].transpose(2, 3, 0, 1)
    if kind == "dense":
        return array.T
    return array


def to_flax(array: np.ndarray, kind: Kind) -> np.ndarray:
    if kind == "conv":
        return array.transpose(2, 3, 1, 0)
    if kind == "conv_transpose":
        return array.transpose(2, 3, 0, 1)[::-1, ::-1]
    if kind == "dense":
        return array.T
    return array


def flax_shape(shape: tuple[int, ...], kind: Kind) -> tuple[int, ...]:
    """The Flax shape of a PyTorch parameter shape (what `to_flax` gives, without an array)."""
    if kind == "conv":  # (Cout, Cin, H, W)
        return shape[2], shape[3], shape[1], shape[0]
    if kind == "conv_transpose":  # (Cin, Cout, H, W)
        return shape[2], shape[3], shape[0], shape[1]
    return shape[::-1]  # dense (out, in) -> (in, out); a bias is 1-D


def canonical_names(keys: list[str]) -> dict[str, str]:
    """Canonical Flax path -> the file's own key: `decoder/` dropped, `dpt/` added where the body is at the top,
    `out_conv` spelled `Conv_0`, and the head renamed to the `<head>` placeholder."""
    names = {}
    for key in keys:
        parts = key.removeprefix("decoder/").split("/")
        if parts[0] in HEAD_NAMES:
            parts[0] = _HEAD
        elif parts[0] != "dpt":
            parts.insert(0, "dpt")
        if len(parts) == 4 and parts[1].startswith("fusion_blocks_") and parts[2] == "out_conv":
            parts[2] = "Conv_0"
        names["/".join(parts)] = key
    return names


def head_name(keys: list[str]) -> str:
    """The one task-head name a file uses; none or several is a CheckpointError."""
    found = sorted({k.removeprefix("decoder/").split("/")[0] for k in keys} & set(HEAD_NAMES))
    if len(found) != 1:
        raise CheckpointError(
            f"expected exactly one task head (one of {', '.join(HEAD_NAMES)}), found {found or 'none'}"
        )
    return found[0]


def check_flax_shapes(decoder: DenseDecoder, found: Mapping[str, tuple[int, ...]], what: str) -> dict[str, str]:
    """Checks a file's keys and shapes against `decoder`; returns canonical path -> file key. Raises CheckpointError
    naming every missing, unexpected and mis-shaped key (in the file's spelling where it has one)."""
    expected_torch = {k: tuple(v.shape) for k, v in decoder.state_dict().items()}
    expected = {p.flax: flax_shape(expected_torch[p.torch], p.kind) for p in param_table()}
    try:
        head = head_name(list(found))
    except CheckpointError as exc:
        raise CheckpointError(f"{what}: {exc}") from None
    names = canonical_names(list(found))
    if len(names) != len(found):
        raise CheckpointError(f"{what}: keys collide once the optional `decoder/` and `dpt/` levels are dropped")

    prefix = "decoder/" if any(k.startswith("decoder/") for k in found) else ""
    dpt_level = any(k.removeprefix("decoder/").startswith("dpt/") for k in found)

    def spelled(canonical: str) -> str:
        """A canonical path as this file would spell it (to name a key it lacks)."""
        path = canonical.replace(_HEAD, head)
        return prefix + (path if dpt_level else path.removeprefix("dpt/"))

    missing = [spelled(k) for k in expected if k not in names]
    unexpected = sorted(names[k] for k in names if k not in expected)
    wrong = [
        f"{names[k]}: checkpoint {tuple(found[names[k]])} vs model {shape}"
        for k, shape in expected.items()
        if k in names and tuple(found[names[k]]) != shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if wrong:
        problems.append(f"shape mismatches: {'; '.join(wrong)}")
    if problems:
        raise CheckpointError(
            f"{what} does not match the official {decoder.task} decoder layout: " + " | ".join(problems)
        )
    return names


def flax_to_state_dict(decoder: DenseDecoder, arrays: Mapping[str, np.ndarray], what: str) -> dict[str, torch.Tensor]:
    """Official Flax arrays -> `decoder`'s `state_dict` (float32), strictly."""
    names = check_flax_shapes(decoder, {k: tuple(v.shape) for k, v in arrays.items()}, what)
    return {
        p.torch: torch.from_numpy(np.ascontiguousarray(to_torch(arrays[names[p.flax]], p.kind), dtype=np.float32))
        for p in param_table()
    }


def load_decoder_weights(decoder: DenseDecoder, path: str | Path, assign: bool = False) -> DenseDecoder:
    """Loads an official `..._dpt.zip` into `decoder` strictly (`assign=True`: onto a meta-device decoder)."""
    state = flax_to_state_dict(decoder, read_npz(path), str(path))
    decoder.load_state_dict(state, strict=True, assign=assign)
    return decoder


def load_decoder(path: str | Path, variant: str, task: str) -> DenseDecoder:
    """Builds the `task` decoder of `variant` and loads an official `.zip` into it; eval mode, float32, CPU."""
    decoder = create_decoder(variant, task, device="meta")  # no allocation, no init: the file's arrays are the weights
    return load_decoder_weights(decoder, path, assign=True).eval()


def load_pretrained_decoder(weights_dir: str | Path, variant: str, task: str) -> DenseDecoder:
    """The official `tips_v2_{tag}_{task}_dpt.zip` of `variant` from `weights_dir` (both So400m spellings)."""
    cfg = get_model_config(variant)
    path = find_decoder_file(weights_dir, (cfg.checkpoint_tag, *cfg.checkpoint_tag_aliases), task)
    return load_decoder(path, variant, task)


def verify_decoder(path: str | Path, variant: str, task: str) -> Path:
    """Checks an official decoder file's key names and shapes against `variant` from the `.npy` headers only."""
    check_flax_shapes(create_decoder(variant, task, device="meta"), read_npz_shapes(path), str(path))
    return Path(path)


def flax_arrays(decoder: DenseDecoder) -> Iterator[tuple[str, np.ndarray]]:
    """`decoder`'s weights in the official Flax layout: (full key with `decoder/` prefix, float32 array)."""
    state = decoder.state_dict()
    head = SAVED_HEAD_NAME[decoder.task]
    for p in param_table():
        array = to_flax(state[p.torch].detach().float().cpu().numpy(), p.kind)
        yield "decoder/" + p.flax.replace(_HEAD, head), np.ascontiguousarray(array)


def save_decoder(decoder: DenseDecoder, path: str | Path) -> Path:
    """Writes `decoder` as an official-layout `.zip` of `.npy` arrays (what `load_decoder` reads back exactly)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for key, array in flax_arrays(decoder):
            with archive.open(key + ".npy", "w", force_zip64=True) as member:
                np.save(member, array, allow_pickle=False)
    return path
