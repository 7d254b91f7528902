"""Official DPT decoder `.zip` files load strictly: a missing, extra or mis-shaped key fails naming it; every release
layout verifies from its headers; what the library writes is the official layout and reads back exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.unit.training.tipsv2.dpt_layout import (
    WIDTHS,
    dpt_layout,
    random_dpt_arrays,
    write_dpt_zip,
    write_header_only_dpt_zip,
)
from training.tipsv2.checkpoint import CheckpointError, read_npz
from training.tipsv2.dpt_checkpoint import load_decoder, load_pretrained_decoder, save_decoder, verify_decoder
from training.tipsv2.pretrained import find_decoder_file

TINY_WIDTH = WIDTHS["tiny"]


@pytest.fixture(scope="module")
def depth_arrays() -> dict[str, np.ndarray]:
    return random_dpt_arrays(dpt_layout(TINY_WIDTH, "depth"), seed=3)


def test_every_value_lands_in_the_official_pytorch_parameter(tmp_path: Path, depth_arrays) -> None:
    decoder = load_decoder(write_dpt_zip(tmp_path / "d.zip", depth_arrays), "tiny", "depth")
    state = decoder.state_dict()
    rb = "decoder/dpt/reassemble_blocks"
    # Conv (H, W, Cin, Cout) -> (Cout, Cin, H, W); Dense (in, out) -> (out, in); ConvTranspose flipped as well.
    assert np.array_equal(
        state["dpt.convs.2.weight"].numpy(), depth_arrays["decoder/dpt/convs_2/kernel"].transpose(3, 2, 0, 1)
    )
    assert np.array_equal(
        state["dpt.reassemble.readout_projects.1.weight"].numpy(), depth_arrays[f"{rb}/readout_projects_1/kernel"].T
    )
    flipped = depth_arrays[f"{rb}/resize_layers_0/kernel"][::-1, ::-1].transpose(2, 3, 0, 1)
    assert np.array_equal(state["dpt.reassemble.resize_layers.0.weight"].numpy(), flipped)
    residual = depth_arrays["decoder/dpt/fusion_blocks_3/PreActResidualConvUnit_0/conv1/kernel"]
    main = depth_arrays["decoder/dpt/fusion_blocks_3/PreActResidualConvUnit_1/conv2/kernel"]
    assert np.array_equal(
        state["dpt.fusion_blocks.3.residual_unit.conv1.weight"].numpy(), residual.transpose(3, 2, 0, 1)
    )
    assert np.array_equal(state["dpt.fusion_blocks.3.main_unit.conv2.weight"].numpy(), main.transpose(3, 2, 0, 1))
    assert np.array_equal(state["head.bias"].numpy(), depth_arrays["decoder/pixel_depth_classif/bias"])
    assert len(state) == len(depth_arrays) and not decoder.training


@pytest.mark.parametrize(
    "key",
    ["decoder/dpt/fusion_blocks_2/Conv_0/bias", "decoder/dpt/convs_0/kernel", "decoder/pixel_depth_classif/kernel"],
)
def test_a_missing_key_is_named(tmp_path: Path, depth_arrays, key: str) -> None:
    arrays = {k: v for k, v in depth_arrays.items() if k != key}
    with pytest.raises(CheckpointError, match=rf"missing keys: {key}"):
        load_decoder(write_dpt_zip(tmp_path / "d.zip", arrays), "tiny", "depth")


def test_an_extra_key_is_named(tmp_path: Path, depth_arrays) -> None:
    arrays = depth_arrays | {
        "decoder/dpt/fusion_blocks_0/PreActResidualConvUnit_1/conv1/kernel": np.zeros((3, 3, 256, 256))
    }
    with pytest.raises(CheckpointError, match=r"unexpected keys: decoder/dpt/fusion_blocks_0/PreActResidualConvUnit_1"):
        load_decoder(write_dpt_zip(tmp_path / "d.zip", arrays), "tiny", "depth")


def test_a_mis_shaped_key_is_named_with_both_shapes(tmp_path: Path, depth_arrays) -> None:
    arrays = dict(depth_arrays)
    arrays["decoder/dpt/reassemble_blocks/resize_layers_3/kernel"] = np.zeros((3, 3, 64, 32), np.float32)
    pattern = r"resize_layers_3/kernel: checkpoint \(3, 3, 64, 32\) vs model \(3, 3, 64, 64\)"
    with pytest.raises(CheckpointError, match=pattern):
        load_decoder(write_dpt_zip(tmp_path / "d.zip", arrays), "tiny", "depth")


def test_a_head_of_another_task_fails_on_its_width(tmp_path: Path) -> None:
    segmentation = write_dpt_zip(tmp_path / "s.zip", random_dpt_arrays(dpt_layout(TINY_WIDTH, "segmentation"), 4))
    with pytest.raises(
        CheckpointError, match=r"pixel_segmentation/kernel: checkpoint \(256, 150\) vs model \(256, 256\)"
    ):
        load_decoder(segmentation, "tiny", "depth")


def test_a_file_with_no_head_or_two_heads_is_refused(tmp_path: Path, depth_arrays) -> None:
    headless = {k: v for k, v in depth_arrays.items() if "pixel_depth" not in k}
    with pytest.raises(CheckpointError, match=r"exactly one task head.*found none"):
        load_decoder(write_dpt_zip(tmp_path / "a.zip", headless), "tiny", "depth")
    two = depth_arrays | {"decoder/pixel_normals/kernel": np.zeros((256, 3)), "decoder/pixel_normals/bias": np.zeros(3)}
    with pytest.raises(CheckpointError, match=r"found \['pixel_depth_classif', 'pixel_normals'\]"):
        load_decoder(write_dpt_zip(tmp_path / "b.zip", two), "tiny", "depth")


def test_the_spellings_the_official_loader_accepts_load_the_same_weights(tmp_path: Path, depth_arrays) -> None:
    """No `decoder/` prefix, no `dpt/` level, `out_conv` for `Conv_0`: the official converter reads all three."""
    reference = load_decoder(write_dpt_zip(tmp_path / "a.zip", depth_arrays), "tiny", "depth").state_dict()
    respelled = {
        key.removeprefix("decoder/").removeprefix("dpt/").replace("/Conv_0/", "/out_conv/"): value
        for key, value in depth_arrays.items()
    }
    other = load_decoder(write_dpt_zip(tmp_path / "b.zip", respelled), "tiny", "depth").state_dict()
    assert all(torch.equal(reference[k], other[k]) for k in reference)


def test_a_file_that_is_not_a_zip_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "d.zip").write_bytes(b"<html>404</html>")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_decoder(tmp_path / "d.zip", "tiny", "depth")


@pytest.mark.parametrize("variant", ["b14", "l14", "so400m14", "g14"])
@pytest.mark.parametrize("task", ["segmentation", "depth", "normals"])
def test_every_release_file_layout_verifies_from_its_headers(tmp_path: Path, variant: str, task: str) -> None:
    path = write_header_only_dpt_zip(tmp_path / f"tips_v2_{variant}_{task}_dpt.zip", dpt_layout(WIDTHS[variant], task))
    assert verify_decoder(path, variant, task) == path


def test_verification_names_the_key_of_a_release_file_for_another_variant(tmp_path: Path) -> None:
    path = write_header_only_dpt_zip(tmp_path / "x.zip", dpt_layout(WIDTHS["l14"], "normals"))
    with pytest.raises(
        CheckpointError, match=r"readout_projects_0/kernel: checkpoint \(2048, 1024\) vs model \(1536, 768\)"
    ):
        verify_decoder(path, "b14", "normals")


@pytest.mark.parametrize("task", ["segmentation", "depth", "normals"])
def test_saved_decoders_are_in_the_official_layout_and_read_back_exactly(tmp_path: Path, task: str) -> None:
    original = load_decoder(
        write_dpt_zip(tmp_path / "in.zip", random_dpt_arrays(dpt_layout(64, task), 5)), "tiny", task
    )
    path = save_decoder(original, tmp_path / "out.zip")
    shapes = {k: v.shape for k, v in read_npz(path).items()}
    assert shapes == dpt_layout(64, task)  # the names and shapes the release uses
    again = load_decoder(path, "tiny", task).state_dict()
    assert all(torch.equal(v, again[k]) for k, v in original.state_dict().items())


def test_the_so400m_decoders_are_found_under_either_spelling(tmp_path: Path) -> None:
    (tmp_path / "tips_v2_so14_depth_dpt.zip").touch()
    assert find_decoder_file(tmp_path, ("so14", "so400m14"), "depth").name == "tips_v2_so14_depth_dpt.zip"
    (tmp_path / "tips_v2_so400m14_depth_dpt.zip").touch()  # the notebook's spelling wins when both are there
    assert find_decoder_file(tmp_path, ("so14", "so400m14"), "depth").name == "tips_v2_so400m14_depth_dpt.zip"
    with pytest.raises(FileNotFoundError, match=r"tips_v2_so400m14_normals_dpt\.zip, tips_v2_so14_normals_dpt\.zip"):
        load_pretrained_decoder(tmp_path, "so14", "normals")
