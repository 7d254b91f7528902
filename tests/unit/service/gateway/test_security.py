"""API keys are looked up by digest; missing and wrong keys are refused with distinct codes."""

from __future__ import annotations

import pytest

from service.gateway.core.config import hash_key
from service.gateway.core.errors import GatewayError
from service.gateway.core.security import KeyRing, bearer_token


def test_keyring_maps_keys_to_tenants() -> None:
    ring = KeyRing({hash_key("key-a"): "acme", hash_key("key-b"): "globex"})
    assert ring.tenant_for("key-a") == "acme" and ring.tenant_for("key-b") == "globex"


@pytest.mark.parametrize(
    ("key", "code"), [(None, "missing_api_key"), ("", "missing_api_key"), ("key-c", "invalid_api_key")]
)
def test_keyring_refuses(key: str | None, code: str) -> None:
    with pytest.raises(GatewayError) as info:
        KeyRing({hash_key("key-a"): "acme"}).tenant_for(key)
    assert info.value.code == code and info.value.status == 401


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc", None) == "abc"
    assert bearer_token("bearer  abc ", None) == "abc"
    assert bearer_token("Basic abc", None) is None
    assert bearer_token(None, "xyz") == "xyz"
