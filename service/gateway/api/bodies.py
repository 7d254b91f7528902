"""Bodies that carry files: images (a JSON document with base64 images, or a multipart form with image files), and
adapter uploads (a multipart form, or the raw file).

Both image forms become the same pair: the request's options (a pydantic model without the images) and the image
bytes. Schema
violations raise FastAPI's `RequestValidationError`, so both forms get the error body of every other endpoint.
The OpenAPI document lists both content types (`request_body_openapi`).
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from service.gateway.core.config import LimitSettings
from service.gateway.core.errors import ErrorKind, GatewayError, invalid
from service.gateway.inputs import check_image_count, check_image_size, decode_base64_image
from service.gateway.state import AppState

Options = TypeVar("Options", bound=BaseModel)


@dataclass
class ImageBody(Generic[Options]):
    options: Options
    images: list[bytes]


def image_body(
    options_model: type[Options], json_model: type[BaseModel], field: str, many: bool
) -> Callable[[Request], Awaitable[ImageBody[Options]]]:
    """A dependency parsing `json_model` (options + base64 `field`) or a multipart form (options + files `field`)."""

    async def parse(request: Request) -> ImageBody[Options]:
        state: AppState = request.app.state.tipsv2
        limits = state.settings.limits
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            options, images = await _from_form(request, options_model, field, limits)
        elif content_type == "application/json" or content_type.endswith("+json"):
            options, images = await _from_json(request, options_model, json_model, field, many, limits)
        else:
            raise GatewayError(
                ErrorKind.UNSUPPORTED_MEDIA,
                f"send application/json or multipart/form-data (got {content_type or 'no content type'})",
                code="unsupported_content_type",
            )
        if not many and len(images) != 1:
            raise GatewayError(
                ErrorKind.INVALID_REQUEST, f"send exactly one file as {field!r}", code="empty_input", param=field
            )
        check_image_count(len(images), limits.max_items, field)
        return ImageBody(options, images)

    return parse


async def _from_form(
    request: Request, options_model: type[Options], field: str, limits: LimitSettings
) -> tuple[Options, list[bytes]]:
    max_fields = limits.max_labels + limits.max_templates + 32
    async with request.form(max_files=limits.max_items, max_fields=max_fields) as form:
        options = _validate(options_model, _form_fields(form, options_model, field), extra=(field,))
        items = list(enumerate(form.getlist(field)))
        return options, [await _file_bytes(item, field, i, limits.max_image_bytes) for i, item in items]


async def _from_json(
    request: Request,
    options_model: type[Options],
    json_model: type[BaseModel],
    field: str,
    many: bool,
    limits: LimitSettings,
) -> tuple[Options, list[bytes]]:
    full = _validate(json_model, _json_document(await request.body()))
    options = options_model.model_validate(full.model_dump(exclude={field}))
    encoded = getattr(full, field)
    items = encoded if many else [encoded]
    check_image_count(len(items), limits.max_items, field)  # before decoding any of them
    images = [
        decode_base64_image(item, f"{field}[{i}]" if many else field, limits.max_image_bytes, field)
        for i, item in enumerate(items)
    ]
    return options, images


def _json_document(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise GatewayError(
            ErrorKind.INVALID_REQUEST, "request body is not valid UTF-8 JSON", code="malformed_json"
        ) from exc


def _validate(model: type[Options], data: Any, extra: tuple[str, ...] = ()) -> Options:
    """Validates, or raises FastAPI's error with the accepted field names (`extra`: those sent otherwise, e.g. the
    files of a form), so that an unknown field's message can name the expected one."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        accepted = [*model.model_fields, *extra]
        raise RequestValidationError([{**error, "accepted": accepted} for error in errors]) from exc


def _form_fields(form: FormData, model: type[BaseModel], files_field: str) -> dict[str, Any]:
    """Form fields as the options model expects them: repeated fields for lists, single values otherwise."""
    fields: dict[str, Any] = {}
    for key in form:
        if key == files_field:
            continue
        values = form.getlist(key)
        if any(isinstance(v, UploadFile) for v in values):
            reason = (
                "must be text, not a file"
                if key in model.model_fields
                else f"is not accepted: send the image file(s) as {files_field!r}"
            )
            raise GatewayError(
                ErrorKind.INVALID_REQUEST, f"form field {key!r} {reason}", code="invalid_request", param=key
            )
        info = model.model_fields.get(key)
        fields[key] = values if info is not None and _is_list(info.annotation) else values[-1]
    return fields


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is list:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_list(arg) for arg in typing.get_args(annotation))
    return False


async def _file_bytes(item: UploadFile | str, field: str, index: int, max_bytes: int) -> bytes:
    where = f"{field}[{index}]"
    if isinstance(item, str):  # a form field instead of a file: accept base64, as in JSON
        return decode_base64_image(item, where, max_bytes, field)
    data = await item.read(max_bytes + 1)
    return check_image_size(data, where, max_bytes, field)


def request_body_openapi(json_model: type[BaseModel], options_model: type[BaseModel], field: str, many: bool) -> dict:
    """`openapi_extra` documenting both content types of an image-carrying endpoint."""
    form_schema = options_model.model_json_schema()
    binary = {"type": "string", "format": "binary"}
    form_schema["properties"][field] = {"type": "array", "items": binary} if many else binary
    form_schema["required"] = [*form_schema.get("required", []), field]
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": json_model.model_json_schema()},
                "multipart/form-data": {"schema": form_schema},
            },
        }
    }


async def read_adapter_upload(request: Request, max_bytes: int) -> tuple[bytes, str | None, bool | None]:
    """(file bytes, name from the form, activate from the form) of a multipart or raw upload."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/octet-stream":
        return await request.body(), None, None
    if content_type != "multipart/form-data":
        raise GatewayError(
            ErrorKind.UNSUPPORTED_MEDIA,
            f"upload the file as multipart/form-data (field `file`) or application/octet-stream (got "
            f"{content_type or 'no content type'})",
            code="unsupported_content_type",
        )
    async with request.form(max_files=1, max_fields=8) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise invalid("the form has no `file` part", code="missing_file", param="file")
        data = await upload.read(max_bytes + 1)
        name, activate = form.get("name"), form.get("activate")
    if activate is not None and (not isinstance(activate, str) or activate.lower() not in ("true", "false")):
        raise invalid("activate must be true or false", code="validation_error", param="activate")
    return data, name if isinstance(name, str) else None, None if activate is None else activate.lower() == "true"
