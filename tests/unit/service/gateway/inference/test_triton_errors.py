"""Triton's failures become the gateway's errors: the messages below are the ones the real tritonserver 2.51 sends."""

from __future__ import annotations

import pytest
from tritonclient.utils import InferenceServerException

from service.gateway.core.config import TritonSettings
from service.gateway.core.errors import ErrorKind
from service.gateway.core.metrics import Metrics
from service.gateway.inference.triton import TritonBackend


@pytest.mark.parametrize(
    ("status", "message", "kind", "code", "http"),
    [
        (
            "StatusCode.UNAVAILABLE",
            "in ensemble 'tipsv2_image', [request id: <id_unknown>] Exceeds maximum queue size",
            ErrorKind.OVERLOADED,
            "triton_queue_full",
            503,
        ),
        (
            "StatusCode.UNAVAILABLE",
            "failed to connect to all addresses",
            ErrorKind.BACKEND_UNAVAILABLE,
            "triton_unavailable",
            503,
        ),
        ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded", ErrorKind.BACKEND_TIMEOUT, "triton_timeout", 504),
        (
            "StatusCode.INTERNAL",
            "in ensemble 'tipsv2_text', unknown adapter 'a/b/1/abcd': not in the adapter store",
            ErrorKind.NOT_FOUND,
            "adapter_not_found",
            404,
        ),
        ("StatusCode.INTERNAL", "something else broke", ErrorKind.BACKEND_ERROR, "triton_error", 502),
    ],
)
async def test_triton_failures_map_to_gateway_errors(
    status: str, message: str, kind: ErrorKind, code: str, http: int
) -> None:
    backend = TritonBackend(TritonSettings(), Metrics())
    try:
        error = backend._map_error("tipsv2_image", InferenceServerException(msg=message, status=status))
    finally:
        await backend.close()
    assert (error.kind, error.code, error.status) == (kind, code, http)
    if http == 503:
        assert error.retry_after is not None
