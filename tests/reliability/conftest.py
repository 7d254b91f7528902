"""Fixtures of the reliability tests: servers of their own to kill, stall and restart (the session's tritonserver and
redis-server, which other tests share, are never signalled)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.tools.local.redis_server import RedisServer, free_port
from tests.reliability.processes import ControlledTriton


@pytest.fixture(scope="package")
def own_triton(model_repository: Path, build_dir: Path) -> Iterator[ControlledTriton]:
    """One tritonserver for the package's fault tests; each test gets it healthy through `triton_ctl`."""
    server = ControlledTriton(model_repository, build_dir / "triton-reliability").start()
    yield server
    server.stop()


@pytest.fixture
def triton_ctl(own_triton: ControlledTriton) -> Iterator[ControlledTriton]:
    yield own_triton.healthy()
    own_triton.resume()  # never leave it stopped for the next test, whatever happened


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """This test's redis-server, with the persistence of the chart and compose file (AOF, fsync every second)."""
    server = RedisServer(free_port(), tmp_path / "redis").start()
    yield server
    server.stop()
