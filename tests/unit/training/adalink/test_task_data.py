"""A task's examples: labels from the chosen field in the manifest's (or the task's) order, captions, resizing."""

from __future__ import annotations

import pytest
import torch

from training.adalink.task_data import load_task_data
from training.adalink.tasks import load_task
from training.data.dataset import ShardSamples
from training.data.domain_shift import CLASSIFICATION_CLASSES, COVER_NAMES


def task(dirs, *overrides: str):  # type: ignore[no-untyped-def]
    return load_task(None, ["name=t", "kind=classification", f"data.train={dirs[0]}", *overrides])


def test_classification_labels_follow_the_manifest(survey_dirs) -> None:  # type: ignore[no-untyped-def]
    data = load_task_data(task(survey_dirs), [survey_dirs[0]])
    samples = ShardSamples(survey_dirs[0])
    assert data.label_names == CLASSIFICATION_CLASSES and len(data) == len(samples)
    assert [data.label_names[i] for i in data.labels.tolist()] == [
        samples[i].meta["label"] for i in range(len(samples))
    ]
    assert data.images.dtype == torch.uint8 and data.images.shape[1:] == (3, 56, 56)


def test_label_field_and_explicit_labels_pick_another_question(survey_dirs) -> None:  # type: ignore[no-untyped-def]
    world_names = list(COVER_NAMES)
    data = load_task_data(
        task(survey_dirs, "label_field=background", f"labels={list(CLASSIFICATION_CLASSES)[::-1]}"), [survey_dirs[0]]
    )
    samples = ShardSamples(survey_dirs[0])
    assert data.label_names[0] == CLASSIFICATION_CLASSES[-1]
    assert data.label_names[int(data.labels[0])] == samples[0].meta["background"]
    with pytest.raises(ValueError, match="not among the task's labels"):
        load_task_data(task(survey_dirs, f"labels={world_names}"), [survey_dirs[0]])


def test_retrieval_keeps_one_caption_per_image(survey_dirs) -> None:  # type: ignore[no-untyped-def]
    data = load_task_data(task(survey_dirs, "kind=retrieval", "caption=dense"), [survey_dirs[1]])
    samples = ShardSamples(survey_dirs[1])
    assert data.captions == tuple(samples[i].meta["captions"]["dense"] for i in range(len(samples)))
    assert data.label_names == () and data.labels.numel() == 0


def test_pixels_are_resized_to_the_task_resolution(survey_dirs) -> None:  # type: ignore[no-untyped-def]
    data = load_task_data(task(survey_dirs, "resolution=28"), [survey_dirs[1]])
    pixels = data.pixels(torch.tensor([0, 3]))
    assert pixels.shape == (2, 3, 28, 28) and 0.0 <= float(pixels.min()) and float(pixels.max()) <= 1.0
