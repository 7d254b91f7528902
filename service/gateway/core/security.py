"""API-key authentication: keys are stored as sha256 digests and compared in constant time."""

from __future__ import annotations

import hmac

from service.gateway.core.config import hash_key
from service.gateway.core.errors import ErrorKind, GatewayError


class KeyRing:
    def __init__(self, table: dict[str, str]) -> None:
        # (digest bytes, tenant) pairs; every lookup compares against all of them, match or not.
        self._entries = [(bytes.fromhex(digest), tenant) for digest, tenant in table.items()]

    def tenant_for(self, key: str | None) -> str:
        if not key:
            raise GatewayError(
                ErrorKind.AUTHENTICATION, "missing API key: send 'Authorization: Bearer <key>'", code="missing_api_key"
            )
        presented = bytes.fromhex(hash_key(key))
        found: str | None = None
        for digest, tenant in self._entries:
            if hmac.compare_digest(presented, digest):
                found = tenant
        if found is None:
            raise GatewayError(ErrorKind.AUTHENTICATION, "invalid API key", code="invalid_api_key")
        return found


def bearer_token(authorization: str | None, x_api_key: str | None) -> str | None:
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return x_api_key
