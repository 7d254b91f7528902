"""The environment the bundled tritonserver is started with."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.tools.local.tritonserver import SHM_GROWTH_BYTES, TritonServer, server_env
from service.triton.repository import read_manifest
from tests.unit.service.triton.repo_fixtures import repository


def test_server_env_gives_each_model_process_one_blas_thread_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    assert server_env()["OPENBLAS_NUM_THREADS"] == "1"


def test_server_env_keeps_the_blas_threads_an_operator_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    assert server_env()["OPENBLAS_NUM_THREADS"] == "4"


def test_stub_shared_memory_is_sized_from_the_repositorys_manifest(tmp_path: Path) -> None:
    repo = repository(tmp_path, runtime="torch", image_max_batch=64)
    size = read_manifest(repo)["server"]["python_shm_default_bytes"]
    assert size >= 64 * 224 * 224 * 3 and size % (1 << 20) == 0  # a full batch of the largest images, in MiB
    args = TritonServer(repo, tmp_path / "work").command()
    assert f"--backend-config=python,shm-default-byte-size={size}" in args
    assert f"--backend-config=python,shm-growth-byte-size={SHM_GROWTH_BYTES}" in args
    assert not any("shm-default" in a for a in TritonServer(tmp_path, tmp_path / "work").command())  # no manifest
    given = TritonServer(repo, tmp_path / "work", python_shm_bytes=1 << 26).command()
    assert "--backend-config=python,shm-default-byte-size=67108864" in given
