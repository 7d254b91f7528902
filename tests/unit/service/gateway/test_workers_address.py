"""Where the gateway's workers listen: --host/--port when given, else TIPS_HOST/TIPS_PORT (the image's command gives
neither, so a deployment moves the gateway with environment variables alone, as the compose stack's test does)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.gateway import workers
from service.gateway.core.config import get_settings


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, workers.ServerOptions]]]:
    calls: list[tuple[int, workers.ServerOptions]] = []
    monkeypatch.setattr(workers, "serve", lambda count, options: calls.append((count, options)) or 0)
    monkeypatch.setenv("TIPS_API_KEYS", "{}")
    get_settings.cache_clear()
    yield calls
    get_settings.cache_clear()


def test_address_comes_from_the_environment_without_flags(
    served: list[tuple[int, workers.ServerOptions]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIPS_HOST", "127.0.0.1")
    monkeypatch.setenv("TIPS_PORT", "18080")
    monkeypatch.setenv("TIPS_WORKERS", "3")
    assert workers.main(["--graceful-s", "30"]) == 0
    ((count, options),) = served
    assert (count, options.host, options.port, options.graceful_s) == (3, "127.0.0.1", 18080, 30)


def test_flags_win_over_the_environment(
    served: list[tuple[int, workers.ServerOptions]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIPS_PORT", "18080")
    workers.main(["--host", "127.0.0.2", "--port", "9999", "--workers", "1"])
    assert (served[0][1].host, served[0][1].port) == ("127.0.0.2", 9999)


def test_defaults_are_every_interface_on_8080(served: list[tuple[int, workers.ServerOptions]]) -> None:
    workers.main(["--workers", "1"])
    assert (served[0][1].host, served[0][1].port) == ("0.0.0.0", 8080)
