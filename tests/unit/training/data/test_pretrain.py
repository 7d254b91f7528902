"""The recipe's input pipeline: a step's global batch is fixed by (seed, step), split exactly over ranks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training.data.pretrain import PretrainDataset, StepBatchSampler, TextSpec, ViewSpec, collate, make_loader
from training.data.synth import generate_dataset
from training.data.vocabulary import CAPTION_SOURCES

VIEWS = ViewSpec(global_size=56, local_size=28, mask_probability=1.0)  # 4 x 4 patch grid


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("shards")
    generate_dataset(directory, 12, samples_per_shard=5, image_size=32, seed=0)
    return directory


def dataset(shards: Path, tokenizer_path: Path, texts: TextSpec | None = None) -> PretrainDataset:
    return PretrainDataset(shards, tokenizer_path, VIEWS, texts or TextSpec(), seed=0)


def test_ranks_share_out_exactly_the_global_batch() -> None:
    single = StepBatchSampler(100, 8, num_steps=30, seed=0)
    ranks = [StepBatchSampler(100, 8, num_steps=30, seed=0, rank=r, world_size=2) for r in range(2)]
    for step in (0, 11, 12, 29):  # 12 steps per epoch: 11 and 12 straddle an epoch boundary
        assert ranks[0].rank_indices(step) + ranks[1].rank_indices(step) == single.global_indices(step)
    assert single.global_indices(11)[0][0] == 0 and single.global_indices(12)[0][0] == 1
    assert len({i for _, i in single.global_indices(0) + single.global_indices(5)}) == 16  # no repeats in an epoch


def test_a_sampler_started_late_replays_the_same_steps() -> None:
    full = list(StepBatchSampler(50, 4, num_steps=10, seed=3))
    late = StepBatchSampler(50, 4, num_steps=10, seed=3)
    late.start_step = 6
    assert list(late) == full[6:]


def test_sampler_refuses_batches_it_cannot_split_or_fill() -> None:
    with pytest.raises(ValueError, match="not divisible"):
        StepBatchSampler(100, 9, 10, 0, world_size=2)
    with pytest.raises(ValueError, match="larger than the dataset"):
        StepBatchSampler(4, 8, 10, 0)


def test_examples_are_a_function_of_epoch_and_index_only(shards: Path, tokenizer_path: Path) -> None:
    data = dataset(shards, tokenizer_path)
    a, b, other_epoch = data[(0, 3)], data[(0, 3)], data[(1, 3)]
    assert np.array_equal(a["global_views"], b["global_views"]) and np.array_equal(a["masks"], b["masks"])
    assert not np.array_equal(a["global_views"][1], other_epoch["global_views"][1])  # a new crop each epoch
    assert np.array_equal(a["global_views"][0], other_epoch["global_views"][0])  # view 0: the whole image
    assert not a["masks"][0].any() and a["masks"][1].any()  # only the cropped views are masked


def test_cls2_caption_source_is_sampled_among_the_configured_ones(shards: Path, tokenizer_path: Path) -> None:
    data = dataset(shards, tokenizer_path, TextSpec(cls2_sources=("keywords", "dense")))
    sources = {CAPTION_SOURCES[data[(e, i)]["cls2_source"]] for e in range(3) for i in range(len(data))}
    assert sources == {"keywords", "dense"}
    alt_only = dataset(shards, tokenizer_path, TextSpec(cls2_sources=("alt",)))[(0, 1)]
    assert np.array_equal(alt_only["cls1_ids"], alt_only["cls2_ids"])


def test_batches_are_view_major_and_trimmed_to_the_longest_text(shards: Path, tokenizer_path: Path) -> None:
    data = dataset(shards, tokenizer_path)
    batch = collate([data[(0, i)] for i in range(4)])
    assert batch.global_views.shape == (2, 4, 3, 56, 56)
    assert batch.local_views is not None and batch.local_views.shape == (2, 4, 3, 28, 28)
    assert batch.masks.shape == (2, 4, 16) and batch.masks.dtype == torch.bool
    assert batch.cls1_ids.shape[1] < 64 and (batch.cls1_ids[:, -1] != 0).any()


def test_loader_with_workers_yields_the_same_batches(shards: Path, tokenizer_path: Path) -> None:
    data = dataset(shards, tokenizer_path)
    plain = [b.global_views for b in make_loader(data, StepBatchSampler(len(data), 4, 3, 0), 0)]
    workers = [b.global_views for b in make_loader(data, StepBatchSampler(len(data), 4, 3, 0), 0, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(plain, workers, strict=True))


def test_view_sizes_must_fit_the_patch_grid() -> None:
    with pytest.raises(ValueError, match="multiple of the patch size"):
        ViewSpec(global_size=30)
