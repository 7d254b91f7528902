"""Small generated shards and seconds-long run configs for the training-loop tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from training.data.synth import generate_dataset
from training.train.config import TrainConfig, load_config

SMOKE = Path(__file__).resolve().parents[4] / "training" / "configs" / "smoke.yaml"


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 samples of 56 px: a batch of 8 sees the same images every step (with new crops), so 20 steps learn."""
    directory = tmp_path_factory.mktemp("tiny_shards")
    generate_dataset(directory, 8, samples_per_shard=4, image_size=56, seed=0)
    return directory


@pytest.fixture(scope="session")
def small_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("small_shards")
    generate_dataset(directory, 32, samples_per_shard=16, image_size=56, seed=1)
    return directory


@pytest.fixture()
def smoke_config(tmp_path: Path, tokenizer_path: Path) -> Callable[..., TrainConfig]:
    """smoke_config(shards, "key=value", ...) -> a 1-thread CPU config writing to a fresh run directory."""

    def make(shards: Path, *overrides: str, run_dir: Path | None = None) -> TrainConfig:
        base = [
            f"run.dir={run_dir or tmp_path / 'run'}",
            f"data.train={shards}",
            f"model.tokenizer={tokenizer_path}",
            "run.device=cpu",
            "run.num_threads=1",
        ]
        return TrainConfig.from_dict(load_config([SMOKE], [*base, *overrides]))

    return make
