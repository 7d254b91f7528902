"""The gateway's one error type, its one status mapping, and its one JSON error body.

Every failure a client can see is a `GatewayError` rendered as
`{"error": {"type": ..., "code": ..., "message": ..., "param": ...}}` (OpenAI's shape, so OpenAI clients parse it).
Validation errors of FastAPI, unknown routes and unexpected exceptions are mapped into the same body.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from enum import Enum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("service.errors")
BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's detail when a body cannot even be decoded


class ErrorKind(str, Enum):
    INVALID_REQUEST = "invalid_request_error"
    AUTHENTICATION = "authentication_error"
    NOT_FOUND = "not_found_error"
    CONFLICT = "conflict_error"
    PAYLOAD_TOO_LARGE = "payload_too_large_error"
    UNSUPPORTED_MEDIA = "unsupported_media_type_error"
    RATE_LIMITED = "rate_limit_error"
    OVERLOADED = "overloaded_error"
    BACKEND_UNAVAILABLE = "backend_unavailable_error"
    BACKEND_TIMEOUT = "backend_timeout_error"
    BACKEND_ERROR = "backend_error"
    STORAGE_UNAVAILABLE = "storage_unavailable_error"
    INTERNAL = "internal_error"


STATUS = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.PAYLOAD_TOO_LARGE: 413,
    ErrorKind.UNSUPPORTED_MEDIA: 415,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.OVERLOADED: 503,
    ErrorKind.BACKEND_UNAVAILABLE: 503,
    ErrorKind.BACKEND_TIMEOUT: 504,
    ErrorKind.BACKEND_ERROR: 502,
    ErrorKind.STORAGE_UNAVAILABLE: 503,
    ErrorKind.INTERNAL: 500,
}


class GatewayError(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after: int | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.code = code or kind.value.removesuffix("_error")
        self.param = param
        self.retry_after = retry_after
        self.status = status or STATUS[kind]

    def body(self) -> dict[str, Any]:
        return {"error": {"type": self.kind.value, "code": self.code, "message": self.message, "param": self.param}}

    def response(self) -> JSONResponse:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        if self.kind is ErrorKind.AUTHENTICATION:
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def invalid(message: str, *, code: str = "invalid_request", param: str | None = None) -> GatewayError:
    return GatewayError(ErrorKind.INVALID_REQUEST, message, code=code, param=param)


def validation_error(errors: Sequence[Any], accepted: Sequence[str] = ()) -> GatewayError:
    """Schema errors (pydantic's or FastAPI's error dicts) as the one error: 400 for a body that is not JSON, 422 for
    JSON that violates the schema, naming the offending field. `accepted`: the body's field names, for the message
    about an unknown field."""
    if not errors:
        return GatewayError(ErrorKind.INVALID_REQUEST, "invalid request", code="validation_error", status=422)
    if any(e.get("type") == "json_invalid" for e in errors):
        return GatewayError(ErrorKind.INVALID_REQUEST, "request body is not valid JSON", code="malformed_json")
    # A misspelt field also makes the intended one "missing": name the unknown one, with the expected name.
    first = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    param = ".".join(loc) or None
    message = str(first.get("msg", "invalid value"))
    if first.get("type") == "extra_forbidden" and param is not None:
        message = unknown_field_message(param, first.get("accepted") or list(accepted))
    elif param:
        message = f"{param}: {message}"
    return GatewayError(ErrorKind.INVALID_REQUEST, message, code="validation_error", param=param, status=422)


def unknown_field_message(name: str, accepted: list[str]) -> str:
    """`unknown field 'image'; did you mean 'images'? (accepted: ...)`, the accepted names when known."""
    message = f"unknown field {name!r}"
    close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return message + (f" (accepted: {', '.join(accepted)})" if accepted else "")


def _body_fields(request: Request) -> list[str]:
    """Field names of the route's JSON body model, when the route declares one."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    model = getattr(getattr(body_field, "field_info", None), "annotation", None)
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway(_: Request, exc: GatewayError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and content_type and "json" not in content_type and "multipart" not in content_type:
            return GatewayError(
                ErrorKind.UNSUPPORTED_MEDIA,
                f"send a JSON body with Content-Type: application/json (got {content_type.split(';')[0]})",
                code="unsupported_content_type",
            ).response()
        return validation_error(exc.errors(), _body_fields(request)).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {
            404: ErrorKind.NOT_FOUND,
            405: ErrorKind.INVALID_REQUEST,
            413: ErrorKind.PAYLOAD_TOO_LARGE,
            415: ErrorKind.UNSUPPORTED_MEDIA,
            401: ErrorKind.AUTHENTICATION,
        }
        kind = kinds.get(exc.status_code, ErrorKind.INVALID_REQUEST)
        if exc.status_code == 400 and str(exc.detail) == BODY_PARSE_ERROR:  # e.g. a JSON body that is not UTF-8
            return GatewayError(kind, "request body is not valid UTF-8 JSON", code="malformed_json").response()
        return GatewayError(kind, str(exc.detail), status=exc.status_code).response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return GatewayError(ErrorKind.INTERNAL, "internal error").response()
