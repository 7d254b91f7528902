"""The last step of an adapter Job: upload the trained file through the gateway's adapter API, as the tenant whose
key the Job was given, so it is validated, versioned and hot-swapped like any user's upload. Retries transient
failures (gateway restarting, 429, 5xx); a refusal (4xx) fails the Job with the gateway's message."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

RETRYABLE = {429, 502, 503, 504}


class UploadRefused(RuntimeError):
    """The gateway refused the adapter (its JSON error says why)."""


def upload_adapter(
    gateway: str,
    api_key: str,
    name: str,
    path: Path,
    activate: bool = True,
    attempts: int = 5,
    timeout_s: float = 60.0,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """POST /v1/adapters (multipart); returns the gateway's answer (name, uploaded_version, ...)."""
    data = path.read_bytes()
    http = client or httpx.Client(base_url=gateway.rstrip("/"), timeout=timeout_s)
    headers = {"Authorization": f"Bearer {api_key}"}
    form = {"name": name, "activate": "true" if activate else "false"}
    try:
        for attempt in range(1, attempts + 1):
            try:
                response = http.post("/v1/adapters", headers=headers, data=form, files={"file": (path.name, data)})
            except httpx.TransportError as exc:
                if attempt == attempts:
                    raise RuntimeError(f"gateway {gateway} unreachable after {attempts} attempts: {exc}") from exc
            else:
                if response.status_code == 201:
                    return dict(response.json())
                if response.status_code not in RETRYABLE or attempt == attempts:
                    raise UploadRefused(f"upload refused with {response.status_code}: {response.text[:500]}")
            sleep(min(2**attempt, 30))
    finally:
        if client is None:
            http.close()
    raise AssertionError("unreachable")
