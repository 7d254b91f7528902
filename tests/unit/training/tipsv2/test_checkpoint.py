"""Official `.npz` checkpoints load strictly; a wrong file fails naming the key; npz <-> safetensors is lossless."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from service.tools.cli.main import main
from tests.unit.training.tipsv2.official_layout import (
    OFFICIAL,
    TINY,
    random_arrays,
    text_layout,
    vision_layout,
    write_header_only_npz,
    write_official,
)
from training.tipsv2.checkpoint import (
    CheckpointError,
    convert_checkpoint,
    load_pretrained,
    read_npz,
    verify_official,
)
from training.tipsv2.pretrained import find_checkpoint_files


@pytest.fixture
def tiny_arrays() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    return random_arrays(vision_layout(TINY), seed=1), random_arrays(text_layout(TINY), seed=2)


def test_official_layout_npz_loads_strictly_with_every_value(tmp_path: Path, tiny_arrays) -> None:
    vision, text = tiny_arrays
    write_official(tmp_path, "tiny", vision, text)
    model = load_pretrained(tmp_path, "tipsv2-tiny")
    for key, value in model.visual.state_dict().items():
        assert np.array_equal(value.numpy(), vision[key]), key
    for key, value in model.text.state_dict().items():
        assert np.array_equal(value.numpy(), text[key]), key
    assert float(model.temperature) == pytest.approx(0.0048)
    assert not model.training


@pytest.mark.parametrize("key", ["blocks.3.ls2.gamma", "mask_token", "pos_embed"])
def test_loading_fails_naming_the_key_when_a_vision_key_is_missing(tmp_path: Path, tiny_arrays, key: str) -> None:
    vision, text = tiny_arrays
    del vision[key]
    write_official(tmp_path, "tiny", vision, text)
    with pytest.raises(CheckpointError, match=rf"missing keys: {key}\b"):
        load_pretrained(tmp_path, "tiny")


def test_loading_fails_naming_the_key_when_a_text_key_is_missing(tmp_path: Path, tiny_arrays) -> None:
    vision, text = tiny_arrays
    del text["transformer.resblocks.1.attn.in_proj_bias"]
    write_official(tmp_path, "tiny", vision, text)
    with pytest.raises(
        CheckpointError, match=r"_text\.npz.*missing keys: transformer\.resblocks\.1\.attn\.in_proj_bias"
    ):
        load_pretrained(tmp_path, "tiny")


def test_loading_fails_naming_the_key_when_there_is_an_extra_key(tmp_path: Path, tiny_arrays) -> None:
    vision, text = tiny_arrays
    vision["blocks.4.norm1.weight"] = np.ones(64, np.float32)  # a fifth block the tiny model does not have
    write_official(tmp_path, "tiny", vision, text)
    with pytest.raises(CheckpointError, match=r"unexpected keys: blocks\.4\.norm1\.weight"):
        load_pretrained(tmp_path, "tiny")


def test_loading_fails_naming_key_and_both_shapes_when_a_shape_differs(tmp_path: Path, tiny_arrays) -> None:
    vision, text = tiny_arrays
    vision["pos_embed"] = np.zeros((1, 1025, 64), np.float32)  # a 32x32 table for a 16x16 model
    write_official(tmp_path, "tiny", vision, text)
    with pytest.raises(CheckpointError, match=r"pos_embed: checkpoint \(1, 1025, 64\) vs model \(1, 257, 64\)"):
        load_pretrained(tmp_path, "tiny")


def test_loading_fails_when_the_text_file_lacks_the_temperature(tmp_path: Path, tiny_arrays) -> None:
    vision, text = tiny_arrays
    np.savez(tmp_path / "tips_v2_oss_tiny_vision.npz", **vision)
    np.savez(tmp_path / "tips_v2_oss_tiny_text.npz", **text)
    with pytest.raises(CheckpointError, match="missing keys: temperature"):
        load_pretrained(tmp_path, "tiny")


def test_loading_fails_clearly_when_a_file_is_not_an_npz(tmp_path: Path, tiny_arrays) -> None:
    write_official(tmp_path, "tiny", *tiny_arrays)
    (tmp_path / "tips_v2_oss_tiny_vision.npz").write_bytes(b"<html>not found</html>")
    with pytest.raises(CheckpointError, match=r"not a readable \.npz"):
        load_pretrained(tmp_path, "tiny")


def test_loading_fails_naming_the_files_looked_for_when_there_are_none(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"tips_v2_oss_b14_vision\.npz"):
        load_pretrained(tmp_path, "b14")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pretrained(tmp_path / "absent", "b14")


def test_so400m_checkpoint_is_found_under_either_official_spelling(tmp_path: Path) -> None:
    for name in ("tips_v2_oss_so400m14_vision.npz", "tips_v2_oss_so400m14_text.npz"):
        (tmp_path / name).touch()
    vision, text = find_checkpoint_files(tmp_path, ("so14", "so400m14"))
    assert (vision.name, text.name) == ("tips_v2_oss_so400m14_vision.npz", "tips_v2_oss_so400m14_text.npz")


@pytest.mark.parametrize(("tag", "spelling"), [("b14", "b14"), ("l14", "l14"), ("so14", "so400m14"), ("g14", "g14")])
def test_every_release_layout_verifies_from_file_headers(tmp_path: Path, tag: str, spelling: str) -> None:
    geometry = OFFICIAL[tag]
    write_header_only_npz(tmp_path / f"tips_v2_oss_{spelling}_vision.npz", vision_layout(geometry))
    write_header_only_npz(tmp_path / f"tips_v2_oss_{spelling}_text.npz", text_layout(geometry) | {"temperature": ()})
    vision, _ = verify_official(tmp_path, tag)
    assert vision.name == f"tips_v2_oss_{spelling}_vision.npz"


def test_verification_names_the_key_of_a_wrong_release_file(tmp_path: Path) -> None:
    layout = vision_layout(OFFICIAL["l14"])
    layout["blocks.23.mlp.fc1.weight"] = (4304, 1024)
    write_header_only_npz(tmp_path / "tips_v2_oss_l14_vision.npz", layout)
    write_header_only_npz(tmp_path / "tips_v2_oss_l14_text.npz", text_layout(OFFICIAL["l14"]) | {"temperature": ()})
    with pytest.raises(CheckpointError, match=r"blocks\.23\.mlp\.fc1\.weight: checkpoint \(4304, 1024\)"):
        verify_official(tmp_path, "l14")


def test_npz_to_safetensors_and_back_is_lossless_including_the_scalar_temperature(tmp_path: Path, tiny_arrays) -> None:
    write_official(tmp_path, "tiny", *tiny_arrays)
    original = tmp_path / "tips_v2_oss_tiny_text.npz"
    converted = convert_checkpoint(original, tmp_path / "st" / "text.safetensors")
    back = convert_checkpoint(converted, tmp_path / "back" / "tips_v2_oss_tiny_text.npz")
    before, after = read_npz(original), read_npz(back)
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[k], after[k]) and before[k].dtype == after[k].dtype for k in before)
    assert after["temperature"].shape == ()


def test_convert_cli_writes_safetensors_and_rejects_unknown_suffixes(tmp_path: Path, tiny_arrays, capsys) -> None:
    write_official(tmp_path, "tiny", *tiny_arrays)
    src = tmp_path / "tips_v2_oss_tiny_vision.npz"
    assert main(["weights", "convert", str(src), str(tmp_path / "vision.safetensors")]) == 0
    from safetensors.torch import load_file

    assert torch.equal(
        load_file(tmp_path / "vision.safetensors")["pos_embed"], torch.from_numpy(tiny_arrays[0]["pos_embed"])
    )
    assert main(["weights", "convert", str(src), str(tmp_path / "vision.pt")]) == 2
    assert "use .npz -> .safetensors" in capsys.readouterr().err


def test_verify_cli_reports_a_matching_directory(tmp_path: Path, tiny_arrays, capsys) -> None:
    write_official(tmp_path, "tiny", *tiny_arrays)
    assert main(["weights", "verify", "--variant", "tiny", "--dir", str(tmp_path)]) == 0
    assert "match the official tiny layout" in capsys.readouterr().out
