"""The environment the bundled tritonserver is started with."""

from __future__ import annotations

import pytest

from service.triton.server import server_env


def test_server_env_gives_each_model_process_one_blas_thread_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    assert server_env()["OPENBLAS_NUM_THREADS"] == "1"


def test_server_env_keeps_the_blas_threads_an_operator_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    assert server_env()["OPENBLAS_NUM_THREADS"] == "4"
