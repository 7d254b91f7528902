"""Session fixtures shared by all tests: the tiny model built once, and the real servers on free loopback ports.

Integration tests use the real `tritonserver` (bundled with nvidia-pytriton) and a real `redis-server`; nothing in
them stands in for either.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from service.tools.local.redis_server import RedisServer, free_port
from service.tools.local.tritonserver import TritonServer
from service.triton.repository import RepositoryOptions

TINY = "tipsv2-tiny"


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="session")
def tiny_weights(build_dir: Path) -> Path:
    from training.export.pipeline import build_local_weights

    return build_local_weights(build_dir / "weights", TINY, seed=0)


@pytest.fixture(scope="session")
def tokenizer_path(tiny_weights: Path) -> Path:
    return tiny_weights / "tokenizer.model"


@pytest.fixture(scope="session")
def tiny_model(tiny_weights: Path):  # type: ignore[no-untyped-def]
    from training.tipsv2.checkpoint import load_pretrained

    return load_pretrained(tiny_weights, TINY)


@pytest.fixture(scope="session")
def adapter_store(build_dir: Path) -> Path:
    path = build_dir / "adapters"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def model_repository(tiny_weights: Path, build_dir: Path, adapter_store: Path) -> Path:
    from service.triton.build import build_repository

    options = RepositoryOptions(adapter_store=str(adapter_store), max_queue_delay_us=5000)
    return build_repository(tiny_weights, TINY, build_dir / "model_repository", options, resolutions=(224, 112))


def start_triton(repository: Path, workdir: Path) -> TritonServer:
    return TritonServer(repository, workdir, free_port(), free_port(), free_port()).start(timeout=120)


@pytest.fixture(scope="session")
def triton(model_repository: Path, build_dir: Path) -> Iterator[TritonServer]:
    server = start_triton(model_repository, build_dir / "triton")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(build_dir: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), build_dir / "redis").start()
    yield server
    server.stop()
