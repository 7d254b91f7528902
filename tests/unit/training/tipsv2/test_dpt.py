"""The DPT decoders compute what the official `pytorch/decoders.py` computes: checked against `dpt_reference.py`, an
independent implementation reading the official Flax-layout arrays, on random weights written as official `.zip`
files and loaded through the library's strict loader.

Error is max |ours - reference| / max |reference|, the reference computed in the precision under test:
- float64 (L/14 at 98 px, an odd grid): equal to rounding, 1e-12 (measured 1e-15 to 3e-15). This pins the
  architecture, the weight conversion and every resampling.
- float32 (B/14 at 448 px and L/14 at 98 px): within 1e-5 (measured 4e-7 to 1.6e-6). torch computes interpolation
  positions in the tensor's precision, so the float32 reference does too; against float64 positions the float32
  interpolations alone move the rough maps of random weights by up to 2e-5.
The three heads of a case share one random DPT body (each file still holds every key), so the reference computes
it once per precision. Unit normals divide by the raw vector's length, which amplifies rounding where it is short,
so the random normals head faces the camera (z bias +6), as NYU normals mostly do.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.unit.training.tipsv2 import dpt_reference, reference
from tests.unit.training.tipsv2.dpt_layout import WIDTHS, dpt_layout, random_dpt_arrays, write_dpt_zip
from tests.unit.training.tipsv2.official_layout import TINY, random_arrays, vision_layout
from training.tipsv2.checkpoint import load_tower
from training.tipsv2.configs import get_model_config
from training.tipsv2.dense import segmentation_labels
from training.tipsv2.dpt import DenseDecoder, unit_normals
from training.tipsv2.dpt_checkpoint import load_decoder
from training.tipsv2.vision import VisionTransformer

TASKS = ("segmentation", "depth", "normals")
Features = list[tuple[np.ndarray, np.ndarray]]


def relative_error(ours: torch.Tensor | np.ndarray, ref: np.ndarray) -> float:
    ours = ours.detach().double().numpy() if isinstance(ours, torch.Tensor) else ours
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


@dataclass
class Case:
    """One variant at one resolution: its three decoder files, the features, and the reference arrays."""

    variant: str
    resolution: int
    features: Features
    files: dict[str, Path]
    arrays: dpt_reference.Arrays  # float64, every key of the three files
    _expected: dict[type, dict[str, np.ndarray]] = field(default_factory=dict)
    _decoders: dict[str, DenseDecoder] = field(default_factory=dict)  # loaded once, float32

    def tensors(self, dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.from_numpy(c).to(dtype), torch.from_numpy(p).to(dtype)) for c, p in self.features]

    def decoder(self, task: str, dtype: torch.dtype) -> DenseDecoder:
        if task not in self._decoders:
            self._decoders[task] = load_decoder(self.files[task], self.variant, task)
        return copy.deepcopy(self._decoders[task]).to(dtype)

    def ours(self, task: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        decoder = self.decoder(task, dtype)
        size = (self.resolution, self.resolution)
        with torch.no_grad():
            if task != "normals":
                return {task: decoder(self.tensors(dtype), size)}
            raw = decoder.head_output(self.tensors(dtype))
            return {"normals": decoder(self.tensors(dtype), size), "unit_normals": unit_normals(raw, size)}

    def expected(self, dtype: torch.dtype) -> dict[str, np.ndarray]:
        """The reference outputs computed in `dtype`, sampling positions included (as torch computes them)."""
        coords = np.float32 if dtype == torch.float32 else np.float64
        if coords not in self._expected:
            a, size = {k: v.to(dtype) for k, v in self.arrays.items()}, (self.resolution, self.resolution)
            body_out = dpt_reference.body(a, self.features, coords)
            self._expected[coords] = {
                "segmentation": dpt_reference.segmentation_logits(a, body_out, size, coords),
                "depth": dpt_reference.depth_metres(a, body_out, size, coords),
                "normals": dpt_reference.normals_raw(a, body_out, size, coords),
                "unit_normals": dpt_reference.unit_normals(a, body_out, size, coords),
            }
        return self._expected[coords]

    def check(self, task: str, dtype: torch.dtype, tolerance: float) -> None:
        expected = self.expected(dtype)
        for name, value in self.ours(task, dtype).items():
            assert value.dtype == dtype and value.shape == expected[name].shape, name
            assert relative_error(value, expected[name]) <= tolerance, name


def random_features(width: int, grid: int, batch: int, seed: int) -> Features:
    """Four (CLS (B, D), patch map (B, D, g, g)) pairs at unit scale, as after the encoder's final norm."""
    rng = np.random.default_rng(seed)
    shapes = ((batch, width), (batch, width, grid, grid))
    return [tuple(rng.standard_normal(shape).astype(np.float32) for shape in shapes) for _ in range(4)]  # type: ignore[misc]


def build_case(directory: Path, variant: str, resolution: int, batch: int, seed: int) -> Case:
    width = WIDTHS[variant]
    body = {
        k: v for k, v in random_dpt_arrays(dpt_layout(width, "depth"), seed).items() if k.startswith("decoder/dpt/")
    }
    everything = dict(body)
    files = {}
    for i, task in enumerate(TASKS):
        head = {k: v for k, v in random_dpt_arrays(dpt_layout(width, task), seed + 1 + i).items() if k not in body}
        if task == "normals":  # facing the camera: unit normals are then well conditioned (see above)
            head["decoder/pixel_normals/bias"] = head["decoder/pixel_normals/bias"] + np.float32([0, 0, 6])
        everything |= head
        files[task] = write_dpt_zip(directory / f"tips_v2_{variant}_{task}_dpt.zip", body | head)
    features = random_features(width, resolution // 14, batch, seed)
    return Case(variant, resolution, features, files, dpt_reference.as_tensors(everything, torch.float64))


@pytest.fixture(scope="module")
def b14_at_448(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return build_case(tmp_path_factory.mktemp("b14"), "b14", 448, batch=1, seed=20)


@pytest.fixture(scope="module")
def l14_at_98(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """L/14 (D = 1024) at 98 px: a 7 x 7 grid, odd, so the fusion resizes its skip inputs; batch of 2."""
    return build_case(tmp_path_factory.mktemp("l14"), "l14", 98, batch=2, seed=30)


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_b14_heads_at_448_match_the_reference_in_float32(b14_at_448: Case, task: str) -> None:
    b14_at_448.check(task, torch.float32, tolerance=1e-5)


@pytest.mark.parametrize("task", TASKS)
def test_l14_heads_at_an_odd_grid_match_the_reference(l14_at_98: Case, task: str) -> None:
    l14_at_98.check(task, torch.float64, tolerance=1e-12)
    l14_at_98.check(task, torch.float32, tolerance=1e-5)


def test_output_shapes_and_ranges_are_the_official_ones(l14_at_98: Case) -> None:
    depth = l14_at_98.ours("depth", torch.float32)["depth"]
    assert depth.shape == (2, 1, 98, 98)
    assert 0.001 <= float(depth.min()) and float(depth.max()) <= 10.0  # an expectation over bins in [0.001, 10]
    normals = l14_at_98.ours("normals", torch.float32)
    assert torch.allclose(normals["unit_normals"].norm(dim=1), torch.ones(2, 98, 98), atol=1e-5)
    with torch.no_grad():
        grid = l14_at_98.decoder("segmentation", torch.float32).head_output(l14_at_98.tensors(torch.float32))
    assert grid.shape == (2, 150, 8 * 7 + 8, 8 * 7 + 8)  # 8x the grid, one patch more where the /2 level rounded up


def test_segmentation_labels_are_the_argmax_of_the_full_upsampling() -> None:
    logits = torch.randn(2, 150, 13, 17, generator=torch.Generator().manual_seed(0))
    full = torch.nn.functional.interpolate(logits, size=(61, 90), mode="bilinear", align_corners=False).argmax(1)
    chunked = segmentation_labels(logits, (61, 90), budget=7 * 61 * 90 * 2)  # 7 classes at a time
    assert torch.equal(chunked, full)


def test_intermediate_layers_are_the_official_normed_blocks() -> None:
    """`intermediate_features` equals `get_intermediate_layers(norm=True)` + the notebook's (CLS, map) reordering,
    spelled out independently in `reference.intermediate_layers`; the trunk's own output is unchanged by it."""
    arrays = random_arrays(vision_layout(TINY), seed=21)
    tower = VisionTransformer(get_model_config("tiny").vision_cfg).eval()
    load_tower(tower, arrays, "vision")
    tower.double()
    pixels = np.random.default_rng(22).random((2, 3, 154, 126))  # 11 x 9 patches: rectangular, off the native grid
    layers = [0, 2, 3]
    ref = reference.intermediate_layers(arrays, pixels, layers, heads=4)
    with torch.no_grad():
        ours = tower.intermediate_features(torch.from_numpy(pixels), layers)
        tokens = tower.embed(torch.from_numpy(pixels))
        out, states = tower.trunk_with_layers(tokens, layers)
        assert torch.equal(out, tower.trunk(tokens))  # the embedding path's output, bit for bit
        assert states[-1] is out  # the final block's normed output is the trunk's output, not a second norm
    for (cls, patch_map), (ref_cls, ref_map) in zip(ours, ref, strict=True):
        assert patch_map.shape == (2, 64, 11, 9)
        # 1e-6, not 1e-12: positions are interpolated in float32 as the official code does (`pos_embed.float()`)
        assert relative_error(cls, ref_cls) < 1e-6 and relative_error(patch_map, ref_map) < 1e-6


def test_every_variant_reads_its_official_layers() -> None:
    layers = {v: get_model_config(v).vision_cfg.dpt_layers for v in ("b14", "l14", "so14", "g14")}
    assert layers == {
        "b14": (2, 5, 8, 11),
        "l14": (5, 11, 17, 23),
        "so14": (6, 13, 20, 26),
        "g14": (9, 19, 29, 39),
    }  # the decoder notebook's INTERMEDIATE_LAYERS_MAP
