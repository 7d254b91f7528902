"""Training on a task: the base never changes, the loss goes down, each method trains only what it should."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.adalink.checksum import state_checksum
from training.adalink.prompts import PromptBank
from training.adalink.task_data import load_task_data
from training.adalink.tasks import load_task
from training.adalink.train import batch_indices, fit
from training.adalink.tuners import prepare
from training.tipsv2.model import TIPSv2
from training.tipsv2.zeroshot import label_text_embeddings


def task_for(dirs: tuple[Path, Path], kind: str = "classification", *overrides: str):  # type: ignore[no-untyped-def]
    base = ["name=test", f"kind={kind}", f"data.train={dirs[0]}", f"data.eval={dirs[1]}", "optim.batch_size=8"]
    fast = [
        "optim.steps=12",
        "optim.warmup_steps=2",
        "optim.lr=0.01",
        "templates=['a photo of a {}.', 'art of the {}.']",
    ]
    return load_task(None, [*base, *fast, *overrides])


@pytest.mark.parametrize("kind", ["classification", "retrieval"])
def test_adapter_training_lowers_the_loss_and_leaves_the_base_unchanged(
    base: TIPSv2, tokenizer, survey_dirs, kind: str
) -> None:  # type: ignore[no-untyped-def]
    task = task_for(survey_dirs, kind, "optim.steps=20")
    data = load_task_data(task, task.train_data)
    before = state_checksum(base)
    tuned = prepare("adalink", base, ("image", "text"), rank=8, seed=0)
    report = fit(tuned, task, data, tokenizer)
    assert state_checksum(base) == before
    assert len(report.losses) == 20 and report.seconds > 0
    assert sum(report.losses[-5:]) < sum(report.losses[:5])
    assert all(torch.count_nonzero(a.up.weight) > 0 for a in tuned.model.adapters.values())


@pytest.mark.parametrize(("method", "expected_trainable"), [("lora", "parametrizations"), ("full", "visual.")])
def test_lora_and_full_fine_tuning_train_a_copy_not_the_base(
    base: TIPSv2, tokenizer, survey_dirs, method: str, expected_trainable: str
) -> None:  # type: ignore[no-untyped-def]
    task = task_for(survey_dirs)
    before = state_checksum(base)
    tuned = prepare(method, base, ("image",), rank=4, seed=0)
    names = [n for n, p in tuned.model.named_parameters() if p.requires_grad]
    assert names and all(expected_trainable in n and not n.startswith("text.") for n in names)
    fit(tuned, task, load_task_data(task, task.train_data), tokenizer)
    assert state_checksum(base) == before
    assert state_checksum(tuned.model) != before


def test_training_is_deterministic_for_a_seed(base: TIPSv2, tokenizer, survey_dirs) -> None:  # type: ignore[no-untyped-def]
    task = task_for(survey_dirs)
    data = load_task_data(task, task.train_data)
    runs = [fit(prepare("adalink", base, ("image", "text"), 4, seed=3), task, data, tokenizer).losses for _ in range(2)]
    assert runs[0] == runs[1]


def test_differentiable_prompt_embeddings_equal_the_model_librarys(base: TIPSv2, tokenizer) -> None:  # type: ignore[no-untyped-def]
    labels = ["sward", "loch", "firn"]
    ours = PromptBank(tokenizer, labels, ("a photo of a {}.", "art of the {}.")).embeddings(base)
    library = label_text_embeddings(base, tokenizer, labels, ("a photo of a {}.", "art of the {}."))
    torch.testing.assert_close(ours, library, rtol=1e-5, atol=1e-6)


def test_batches_cover_each_epoch_without_repeats() -> None:
    batches = list(batch_indices(10, 3, 6, seed=0))
    first, second = torch.cat(batches[:3]), torch.cat(batches[3:])
    assert len(set(first.tolist())) == 9 and len(set(second.tolist())) == 9
    with pytest.raises(ValueError, match="larger than"):
        next(batch_indices(2, 3, 1, seed=0))
