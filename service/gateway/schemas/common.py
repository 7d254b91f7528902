"""Pieces shared by several endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from training.contracts.adapter_store import NAME_PATTERN, REF_PATTERN

EncodingFormat = Literal["float", "base64"]
ADAPTER_NAME_PATTERN = NAME_PATTERN
ADAPTER_REF_PATTERN = REF_PATTERN  # `name` or `name@version`


class AdapterUsed(BaseModel):
    name: str
    version: int


class ErrorDetail(BaseModel):
    type: str = Field(description="Error category, e.g. invalid_request_error")
    code: str = Field(description="Specific error code, e.g. empty_input")
    message: str
    param: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "Invalid request",
        401: "Missing or invalid API key",
        404: "Unknown model or adapter",
        409: "Conflict (e.g. deleting the active adapter version)",
        413: "Payload too large",
        415: "Unsupported media type",
        422: "Request body does not match the schema",
        429: "Rate limited (Retry-After says when to retry)",
        502: "Inference backend failed",
        503: "Overloaded or inference backend unavailable (Retry-After)",
        504: "Inference timed out",
    }.items()
}
