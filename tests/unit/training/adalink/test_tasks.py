"""Task files: strict keys, clear messages, defaults that make a complete task, overrides on top."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.adalink.tasks import load_task
from training.tipsv2.prompts import TCL_TEMPLATES
from training.train.config import ConfigError

EXAMPLES = Path(__file__).resolve().parents[4] / "training" / "configs" / "tasks"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(text)
    return path


def test_minimal_task_takes_the_defaults(tmp_path: Path) -> None:
    task = load_task(write(tmp_path, "name: t\nkind: classification\ndata: {train: shards}\n"))
    assert task.train_data == (Path("shards"),) and task.eval_data == ()
    assert task.templates == TCL_TEMPLATES and task.labels is None and task.image_embedding == "cls1"
    assert task.adapter.modalities == ("image", "text") and task.adapter.rank == 16
    assert task.optim.steps == 300 and isinstance(task.optim.lr, float)


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_task_files_are_valid(example: Path) -> None:
    assert load_task(example).name


def test_overrides_apply_on_top_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nkind: retrieval\ndata: {train: [a, b]}\n")
    task = load_task(path, ["adapter.rank=4", "adapter.modalities=[text]", "optim.steps=7"])
    assert task.adapter.rank == 4 and task.adapter.modalities == ("text",) and task.optim.steps == 7
    assert task.train_data == (Path("a"), Path("b"))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: t\nkind: classification\ndata: {train: s}\nadaptr: {}\n", "unknown config key 'adaptr'"),
        ("name: t\nkind: detection\ndata: {train: s}\n", "kind must be one of"),
        ("name: t\nkind: classification\n", "data.train is required"),
        ("kind: classification\ndata: {train: s}\n", "name is required"),
        ("name: t\nkind: classification\ndata: {train: s}\ntemplates: ['a photo']\n", "must contain"),
        ("name: t\nkind: classification\ndata: {train: s}\nlabels: [a, a]\n", "twice"),
        ("name: t\nkind: classification\ndata: {train: s}\nadapter: {rank: 0}\n", "adapter.rank"),
        ("name: t\nkind: classification\ndata: {train: s}\nadapter: {rank: 4.5}\n", "adapter.rank"),
        ("name: t\nkind: classification\ndata: {train: s}\nadapter: {modalities: [audio]}\n", "modalities"),
        ("name: t\nkind: classification\ndata: {train: s}\nadapter: {modalities: [{a: 1}]}\n", "modalities"),
        ("name: t\nkind: classification\ndata: {train: s}\noptim: {seed: true}\n", "optim.seed"),
        ("name: t\nkind: classification\ndata: {train: s}\noptim: {weight_decay: -1}\n", "optim.weight_decay"),
        ("name: t\nkind: classification\ndata: {train: s}\nadapter: {activation: tanh}\n", "activation"),
        ("name: t\nkind: classification\ndata: {train: s}\noptim: {steps: 0}\n", "optim.steps"),
        ("name: t\nkind: classification\ndata: {train: s}\noptim: {lr: 0}\n", "optim.lr"),
        ("name: t\nkind: classification\ndata: {train: s}\nimage_embedding: cls3\n", "image_embedding"),
        ("name: t\nkind: retrieval\ndata: {train: s}\ncaption: poem\n", "caption"),
        ("name: t\nkind: classification\ndata: {train: s}\nlabel_field: colour\n", "label_field"),
        ("name: t\nkind: classification\ndata: {train: s}\nresolution: 5\n", "resolution"),
        ("- a list\n", "mapping"),
    ],
)
def test_bad_task_is_refused_saying_what_is_wrong(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_task(write(tmp_path, text))


def test_missing_task_file_is_reported() -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_task("/nonexistent/task.yaml")
