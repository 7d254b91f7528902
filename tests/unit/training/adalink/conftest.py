"""Fixtures of the AdaLink tests: a private copy of the tiny base (tests freeze and wrap it; the session's shared
`tiny_model` must stay untouched) and a small survey dataset at 56 px (a 4 x 4 patch grid: fast steps)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from training.data.domain_shift import generate_survey_dataset
from training.tipsv2.checkpoint import load_pretrained
from training.tipsv2.model import TIPSv2
from training.tipsv2.tokenizer import Tokenizer

TINY = "tipsv2-tiny"
IMAGE_SIZE = 56


@pytest.fixture
def base(tiny_weights: Path) -> TIPSv2:
    return load_pretrained(tiny_weights, TINY)


@pytest.fixture(scope="session")
def tokenizer(tokenizer_path: Path) -> Tokenizer:
    return Tokenizer(tokenizer_path)


@pytest.fixture(scope="session")
def survey_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("survey")
    generate_survey_dataset(root / "train", 48, samples_per_shard=24, image_size=IMAGE_SIZE, seed=0, split="train")
    generate_survey_dataset(root / "eval", 24, samples_per_shard=24, image_size=IMAGE_SIZE, seed=0, split="eval")
    return root / "train", root / "eval"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core machine: one torch thread avoids oversubscription (several times faster)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
