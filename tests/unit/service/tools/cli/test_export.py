"""`tipsv2 export` turns its flags into the fused models' settings and says how to size tritonserver's stub memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.tools.cli.main import main
from service.triton.config import parse_pbtxt
from service.triton.repository import read_manifest
from training.contracts.served import IMAGE_MODEL, TEXT_MODEL


def test_export_flags_reach_the_fused_models(
    tiny_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "repo"
    flags = ["--runtime", "torch", "--fused-instances", "2", "--compile-backend", "eager", "--torch-compile", "default"]
    flags += ["--compile-bucket", "4", "--compile-bucket", "8", "--image-max-batch", "16", "--resolution", "112"]
    assert main(["export", "--weights", str(tiny_weights), "--variant", "tipsv2-tiny", "--out", str(out), *flags]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [IMAGE_MODEL, TEXT_MODEL]
    image = parse_pbtxt((out / IMAGE_MODEL / "config.pbtxt").read_text())
    params = {k: v.string_value for k, v in image.parameters.items()}
    assert image.instance_group[0].count == 2 and image.max_batch_size == 16
    assert params["compile"] == "default" and params["compile_backend"] == "eager"
    assert params["compile_buckets"] == "4,8,16"
    shm = read_manifest(out)["server"]["python_shm_default_bytes"]
    assert f"--backend-config=python,shm-default-byte-size={shm}" in capsys.readouterr().out
