"""Settings refuse unsafe production configurations and read nested values from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.gateway.core.config import Settings, hash_key


def test_production_refuses_dev_key() -> None:
    with pytest.raises(ValidationError, match="development convenience"):
        Settings(environment="production", dev_api_key="anything", api_keys={hash_key("k" * 40): "acme"})


def test_production_refuses_placeholder_key_hash() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(environment="production", api_keys={hash_key("changeme"): "acme"})


def test_production_needs_keys() -> None:
    with pytest.raises(ValidationError, match="TIPS_API_KEYS"):
        Settings(environment="production")


def test_keys_must_be_digests() -> None:
    with pytest.raises(ValidationError, match="sha256"):
        Settings(api_keys={"plaintext-key": "acme"})


def test_nested_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIPS_REDIS__URL", "redis://example:1/2")
    monkeypatch.setenv("TIPS_LIMITS__MAX_ITEMS", "7")
    settings = Settings()
    assert settings.redis.url == "redis://example:1/2" and settings.limits.max_items == 7


def test_workers_are_pinned_one_per_core_only_when_the_cpu_set_has_one_core_per_worker() -> None:
    from service.gateway.workers import core_plan

    assert core_plan(2, {0, 1}) == [0, 1]
    assert core_plan(2, {4, 6}) == [4, 6]
    assert core_plan(2, set(range(16))) == [None, None]  # a shared CPU set: the kernel schedules
    assert core_plan(4, {0, 1}) == [None] * 4
