"""The hot path: JSON bodies of `POST /v1/embeddings` and `POST /v1/embed/image`, served straight from ASGI.

These two requests are nearly all of production traffic, and most of their gateway CPU went to the framework rather
than to the request (a py-spy profile under load: Starlette's middleware stack, FastAPI's routing and dependency
resolution, pydantic response validation, `json.dumps`). Here a request costs: one body read with one size check, the
API key, `model_validate_json` (pydantic's Rust parser), the endpoint's own work (`text_embeddings`,
`image_embeddings`, shared with the FastAPI routes), and `orjson` for the response; the request metrics are recorded
after the response has been handed to the server.

Everything else (other routes, multipart bodies, other content types, the OpenAPI document) goes to FastAPI, whose
routes remain the documented interface and answer the same way. Errors have the one JSON body of
`service.gateway.core.errors`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.types import Receive, Scope, Send

from service.gateway.api.deps import unknown_query_error
from service.gateway.api.routes.embeddings import text_embeddings
from service.gateway.api.routes.encoding import json_bytes
from service.gateway.api.routes.images import image_embeddings
from service.gateway.core.errors import ErrorKind, GatewayError, validation_error
from service.gateway.core.security import bearer_token
from service.gateway.inputs import check_image_count, decode_base64_image
from service.gateway.schemas.embeddings import EmbeddingsRequest
from service.gateway.schemas.images import ImageEmbedRequest
from service.gateway.state import AppState

log = logging.getLogger("service.errors")
Model = TypeVar("Model", bound=BaseModel)
Handler = Callable[[AppState, str, bytes], Awaitable[dict[str, Any]]]
JSON_HEADERS = [(b"content-type", b"application/json")]


async def _embeddings(state: AppState, tenant: str, raw: bytes) -> dict[str, Any]:
    body = parse_json(EmbeddingsRequest, raw)
    return await text_embeddings(state, tenant, body, state.rate_limiter.quota(tenant))


async def _embed_image(state: AppState, tenant: str, raw: bytes) -> dict[str, Any]:
    body = parse_json(ImageEmbedRequest, raw)
    max_items, max_bytes = state.settings.limits.max_items, state.settings.limits.max_image_bytes
    check_image_count(len(body.images), max_items, "images")  # before decoding any of them
    images = [decode_base64_image(item, f"images[{i}]", max_bytes, "images") for i, item in enumerate(body.images)]
    return await image_embeddings(state, tenant, body, images, state.rate_limiter.quota(tenant))


ROUTES: dict[str, Handler] = {"/v1/embeddings": _embeddings, "/v1/embed/image": _embed_image}


def hot_route(scope: Scope) -> Handler | None:
    """The handler of a request the hot path serves (a JSON POST to one of `ROUTES`), else None."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    handler = ROUTES.get(scope["path"])
    if handler is None:
        return None
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return handler if media == b"application/json" or media.endswith(b"+json") else None
    return None


async def serve(state: AppState, handler: Handler, scope: Scope, receive: Receive, send: Send) -> None:
    started = time.perf_counter()
    headers = JSON_HEADERS
    try:
        if scope.get("query_string"):
            _refuse_query(scope)
        raw = await read_body(scope, receive, state.settings.limits.max_body_bytes)
        tenant = authenticate(state, scope)
        status, payload = 200, json_bytes(await handler(state, tenant, raw))
    except GatewayError as exc:
        status, payload, headers = error_response(exc)
    except Exception:
        log.exception("unhandled error on POST %s", scope["path"])
        status, payload, headers = error_response(GatewayError(ErrorKind.INTERNAL, "internal error"))
    headers = [*headers, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
    metrics = state.metrics  # after the response is out: not on the request's critical path
    metrics.requests.labels(scope["path"], "POST", str(status)).inc()
    metrics.request_duration.labels(scope["path"]).observe(time.perf_counter() - started)


async def read_body(scope: Scope, receive: Receive, max_bytes: int) -> bytes:
    """The whole body, refused with 413 above `max_bytes` (by Content-Length at once, else while it streams)."""
    too_large = GatewayError(
        ErrorKind.PAYLOAD_TOO_LARGE, f"request body exceeds {max_bytes} bytes", code="body_too_large"
    )
    for name, value in scope["headers"]:
        if name == b"content-length" and (not value.isdigit() or int(value) > max_bytes):
            raise too_large
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise GatewayError(ErrorKind.INVALID_REQUEST, "client disconnected", code="client_disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def authenticate(state: AppState, scope: Scope) -> str:
    authorization = x_api_key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"x-api-key":
            x_api_key = value.decode("latin-1")
    try:
        return state.keyring.tenant_for(bearer_token(authorization, x_api_key))
    except GatewayError:
        state.metrics.auth_failures.inc()
        raise


def parse_json(model: type[Model], raw: bytes) -> Model:
    """The body as `model`, parsed and validated in one pass by pydantic's Rust JSON parser. A body that parser
    refuses is read again by the standard library, which accepts all of JSON (e.g. a lone surrogate escape, which the
    text checks then refuse by name) and says whether it is JSON at all."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        if not any(e["type"] == "json_invalid" for e in errors):
            raise validation_error(errors, list(model.model_fields)) from None
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise GatewayError(
            ErrorKind.INVALID_REQUEST, "request body is not valid UTF-8 JSON", code="malformed_json"
        ) from None
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise validation_error(exc.errors(include_url=False, include_context=False), list(model.model_fields)) from None


def _refuse_query(scope: Scope) -> None:
    """The hot routes take everything in the body: any query parameter is a mistake worth telling the client."""
    error = unknown_query_error(scope, frozenset())
    if error is not None:
        raise error


def error_response(error: GatewayError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    headers = list(JSON_HEADERS)
    if error.retry_after is not None:
        headers.append((b"retry-after", str(error.retry_after).encode()))
    if error.kind is ErrorKind.AUTHENTICATION:
        headers.append((b"www-authenticate", b"Bearer"))
    return error.status, json_bytes(error.body()), headers
