"""The tiny configuration computes what the official code computes: checked against `reference.py`, an independent
float64 numpy implementation, to 1e-6 relative (max |ours - reference| / max |reference|), with the model in float64.

The weights are random official-layout arrays with gains and biases far from 1 and 0, so a forgotten LayerScale,
bias, norm or position would show; the reference knows the weights only through the official key names.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.unit.training.tipsv2 import reference
from tests.unit.training.tipsv2.official_layout import TINY, random_arrays, text_layout, vision_layout
from training.tipsv2.checkpoint import load_tower
from training.tipsv2.configs import get_model_config
from training.tipsv2.model import TIPSv2, create_model
from training.tipsv2.zeroshot import dense_features

DEPTH, HEADS, TEXT_DEPTH = TINY.vision_depth, 4, TINY.text_depth


def relative_error(ours: torch.Tensor, ref: np.ndarray) -> float:
    return float(np.abs(ours.detach().double().numpy() - ref).max() / np.abs(ref).max())


@pytest.fixture(scope="module")
def weights() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    return random_arrays(vision_layout(TINY), seed=11), random_arrays(text_layout(TINY), seed=12)


@pytest.fixture(scope="module")
def model64(weights) -> TIPSv2:
    model = create_model("tiny").eval()
    load_tower(model.visual, weights[0], "vision")
    load_tower(model.text, weights[1], "text")
    return model.double()


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.random.default_rng(3).random((2, 3, 224, 224))


@pytest.fixture(scope="module")
def vision_reference(weights, pixels) -> dict[str, np.ndarray]:
    return reference.vision_forward(weights[0], pixels, DEPTH, HEADS)


def test_image_outputs_match_the_float64_reference_at_the_native_grid(model64, pixels, vision_reference) -> None:
    with torch.no_grad():
        features = model64.encode_image(torch.from_numpy(pixels))
    assert relative_error(features.cls1, vision_reference["cls1"]) < 1e-6
    assert relative_error(features.cls2, vision_reference["cls2"]) < 1e-6
    assert relative_error(features.patch_tokens, vision_reference["patches"]) < 1e-6


def test_value_path_dense_features_match_the_float64_reference(model64, pixels, vision_reference) -> None:
    dense = dense_features(model64, torch.from_numpy(pixels))
    assert dense.shape == (2, 16, 16, 64)
    assert relative_error(dense.reshape(2, 256, 64), vision_reference["dense"]) < 1e-6
    # The value path is a different feature from the final patch tokens (the test would be vacuous otherwise).
    assert np.abs(vision_reference["dense"] - vision_reference["patches"]).max() > 0.1


def test_image_outputs_match_the_reference_at_a_non_native_rectangular_grid(weights, model64) -> None:
    pixels = np.random.default_rng(4).random((1, 3, 168, 308))  # 12 x 22 patches: one axis down, one up from 16
    ref = reference.vision_forward(weights[0], pixels, DEPTH, HEADS)
    with torch.no_grad():
        features = model64.encode_image(torch.from_numpy(pixels))
    assert features.patch_tokens.shape == (1, 12 * 22, 64)
    # Positions are interpolated in float32 as the official code does (`pos_embed.float()`), hence 1e-6 still.
    assert relative_error(features.cls1, ref["cls1"]) < 1e-6
    assert relative_error(features.patch_tokens, ref["patches"]) < 1e-6


def test_text_embeddings_match_the_float64_reference(weights, model64) -> None:
    rng = np.random.default_rng(5)
    ids = rng.integers(2, TINY.vocab, size=(4, 64))
    for row, length in enumerate((1, 7, 33)):  # the last row stays 64 tokens long: no padding at all
        ids[row, length:] = 0
    ref = reference.text_forward(weights[1], ids, TEXT_DEPTH, HEADS)
    with torch.no_grad():
        ours = model64.encode_text(torch.from_numpy(ids))
    assert relative_error(ours, ref) < 1e-6


def test_float32_model_stays_close_to_the_float64_reference(weights, model64, pixels, vision_reference) -> None:
    model32 = create_model("tiny").eval()
    model32.load_state_dict({k: v.float() for k, v in model64.state_dict().items()})
    with torch.no_grad():
        features = model32.encode_image(torch.from_numpy(pixels).float())
    assert relative_error(features.patch_tokens, vision_reference["patches"]) < 1e-5


def test_text_pooling_is_invariant_to_extra_padding(model64) -> None:
    ids = torch.tensor([[5, 17, 250, 3, 0, 0, 0, 0], [9, 8, 7, 0, 0, 0, 0, 0]])
    padded = torch.nn.functional.pad(ids, (0, 56))  # the same texts padded to the official 64
    with torch.no_grad():
        short, long = model64.encode_text(ids), model64.encode_text(padded)
        alone = model64.encode_text(ids[1:, :3])  # no padding at all, and no batch neighbour
    assert relative_error(long, short.numpy()) < 1e-12
    assert relative_error(alone, short[1:].numpy()) < 1e-12


def test_interpolated_positions_at_the_native_grid_are_the_stored_table(model64) -> None:
    visual = model64.visual
    assert torch.equal(visual.interpolate_pos_encoding(16, 16), visual.pos_embed)
    # ...and the resampling itself is the identity at equal size (what the shortcut skips).
    assert np.allclose(reference.antialiased_bilinear_matrix(16, 16), np.eye(16))


def test_reference_resampling_agrees_with_torch_antialiased_bilinear() -> None:
    grid = torch.randn(1, 5, 16, 16, dtype=torch.float64)
    for size in ((12, 22), (7, 16), (32, 9)):
        ours = torch.nn.functional.interpolate(grid, size=size, mode="bilinear", antialias=True, align_corners=False)
        rows, cols = (reference.antialiased_bilinear_matrix(16, n) for n in size)
        ref = np.einsum("ai,cij,bj->cab", rows, grid[0].numpy(), cols)
        assert np.abs(ours[0].numpy() - ref).max() < 1e-12


def test_swiglu_feed_forward_of_g14_matches_the_reference() -> None:
    """g/14's fused SwiGLU at tiny size: hidden (int(256 * 2 / 3) + 7) // 8 * 8 = 176, `w12` = [gate; up]."""
    cfg = get_model_config("tiny")
    cfg = replace(cfg, vision_cfg=replace(cfg.vision_cfg, ffn_layer="swiglufused"))
    arrays = random_arrays(vision_layout(replace(TINY, vision_ffn="swiglu", vision_hidden=176)), seed=13)
    model = TIPSv2(cfg).eval()
    load_tower(model.visual, arrays, "vision")
    pixels = np.random.default_rng(6).random((1, 3, 224, 224))
    with torch.no_grad():
        features = model.double().encode_image(torch.from_numpy(pixels))
    ref = reference.vision_forward(arrays, pixels, DEPTH, HEADS)
    assert relative_error(features.patch_tokens, ref["patches"]) < 1e-6
