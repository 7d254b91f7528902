"""`tipsv2 adapt` end to end: a valid adapter file for the served base, the base untouched, clear CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from service.tools.cli.main import main
from training.adalink.adapted import AdaptedTIPSv2
from training.adalink.checksum import state_checksum
from training.contracts.adapter_file import validate_adapter
from training.tipsv2.checkpoint import load_pretrained, weights_digest
from training.tipsv2.pretrained import checkpoint_files

TINY = "tipsv2-tiny"


def task_file(tmp_path: Path, dirs: tuple[Path, Path], **extra: str) -> Path:
    lines = [
        "name: survey-test",
        "kind: classification",
        f"data: {{train: {dirs[0]}, eval: {dirs[1]}}}",
        "templates: ['a photo of a {}.']",
        "adapter: {modalities: [image, text], rank: 4, activation: relu}",
        "optim: {steps: 4, batch_size: 8, warmup_steps: 1}",
        *(f"{k}: {v}" for k, v in extra.items()),
    ]
    path = tmp_path / "task.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_adapt_writes_a_valid_adapter_for_the_served_base(
    tiny_weights: Path, survey_dirs, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    base = load_pretrained(tiny_weights, TINY)
    before = state_checksum(base)
    out, report = tmp_path / "a" / "survey.safetensors", tmp_path / "report.json"
    code = main(["adapt", "--base", str(tiny_weights), "--task", str(task_file(tmp_path, survey_dirs)),
                 "--out", str(out), "--report", str(report), "--set", "optim.seed=1"])  # fmt: skip
    assert code == 0
    files = checkpoint_files("tiny")
    digest = weights_digest(tiny_weights / files.vision, tiny_weights / files.text)
    info = validate_adapter(out.read_bytes(), base_hash=digest, dim=base.cfg.embed_dim)
    assert info.base_model == TINY and info.task == "survey-test" and info.modalities == ("image", "text")
    assert (info.rank, info.activation, info.dtype) == (4, "relu", "float32")
    result = json.loads(report.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert result["base_checksum"] == before and result["trainable_parameters"] == 2 * 2 * 4 * base.cfg.embed_dim
    assert set(result["eval"]) == {"base", "adapted"} and 0 <= result["eval"]["adapted"]["top1"] <= 1
    assert state_checksum(load_pretrained(tiny_weights, TINY)) == before  # the files on disk are untouched too
    adapted = AdaptedTIPSv2.from_adapter_file(base, out.read_bytes(), base_hash=digest)
    assert any(torch.count_nonzero(a.up.weight) for a in adapted.adapters.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "adapter.pt"], "must end in .safetensors"),
        (["--task", "/nonexistent.yaml"], "does not exist"),
        (["--base", "/nonexistent"], "does not exist"),
        (["--set", "adapter.rank=0"], "adapter.rank"),
        (["--device", "cuda"], "no CUDA device"),
    ],
)
def test_adapt_reports_bad_arguments_without_a_traceback(
    tiny_weights: Path, survey_dirs, tmp_path: Path, capsys, args: list[str], message: str
) -> None:  # type: ignore[no-untyped-def]
    defaults = {"--base": str(tiny_weights), "--task": str(task_file(tmp_path, survey_dirs)),
                "--out": str(tmp_path / "x.safetensors")}  # fmt: skip
    pairs = dict(defaults)
    extra = []
    for key, value in zip(args[::2], args[1::2], strict=True):
        if key in pairs:
            pairs[key] = value
        else:
            extra += [key, value]
    argv = ["adapt", *[item for pair in pairs.items() for item in pair], *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.safetensors").exists()
