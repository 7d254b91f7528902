"""Checks of request content that JSON schemas cannot express; each failure is a 4xx naming the field.

Texts must be encodable as UTF-8: JSON allows lone surrogates (`"\\ud800"`), which the tokenizer cannot take.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from service.gateway.core.config import LimitSettings
from service.gateway.core.errors import ErrorKind, GatewayError, invalid
from training.tipsv2.decoding import ImageDecodeError, ImageTooLarge


def validate_texts(texts: Sequence[str], max_items: int, max_chars: int, param: str = "input") -> None:
    if not texts:
        raise invalid(f"{param} is an empty list", code="empty_input", param=param)
    if len(texts) > max_items:
        raise invalid(
            f"{param} has {len(texts)} texts; at most {max_items} per request", code="too_many_inputs", param=param
        )
    for index, text in enumerate(texts):
        _check_text(text, f"{param}[{index}]", max_chars, param)


def validate_zeroshot(labels: Sequence[str], templates: Sequence[str] | None, limits: LimitSettings) -> None:
    validate_labels(labels, limits.max_labels, limits.max_text_chars)
    if templates is not None:
        validate_templates(templates, limits.max_templates, limits.max_text_chars)


def validate_labels(labels: Sequence[str], max_labels: int, max_chars: int) -> None:
    if not labels:
        raise invalid("labels is an empty list", code="empty_input", param="labels")
    if len(labels) > max_labels:
        raise invalid(f"{len(labels)} labels; at most {max_labels} per request", code="too_many_labels", param="labels")
    for index, label in enumerate(labels):
        _check_text(label, f"labels[{index}]", max_chars, "labels")
    if len(set(labels)) != len(labels):
        raise invalid("labels must be distinct", code="duplicate_labels", param="labels")


def validate_templates(templates: Sequence[str], max_templates: int, max_chars: int) -> None:
    """Each template holds exactly one `{}` and no other brace, so `template.format(label)` is a plain substitution."""
    if not templates:
        raise invalid("templates is an empty list", code="empty_input", param="templates")
    if len(templates) > max_templates:
        raise invalid(
            f"{len(templates)} templates; at most {max_templates} per request",
            code="too_many_templates",
            param="templates",
        )
    for index, template in enumerate(templates):
        _check_text(template, f"templates[{index}]", max_chars, "templates")
        if template.count("{}") != 1 or template.replace("{}", "").count("{") or template.replace("{}", "").count("}"):
            raise invalid(
                f"templates[{index}] must contain '{{}}' exactly once and no other braces",
                code="invalid_template",
                param="templates",
            )


def _check_text(text: str, where: str, max_chars: int, param: str) -> None:
    if not text.strip():
        raise invalid(f"{where} is empty", code="empty_input", param=param)
    if len(text) > max_chars:
        raise invalid(f"{where} has {len(text)} characters; at most {max_chars}", code="input_too_long", param=param)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise invalid(f"{where} is not valid Unicode (lone surrogate)", code="invalid_text", param=param) from exc


def check_image_count(count: int, max_items: int, param: str = "images") -> None:
    if count == 0:
        raise invalid(f"{param} is an empty list", code="empty_input", param=param)
    if count > max_items:
        raise invalid(f"{count} images; at most {max_items} per request", code="too_many_inputs", param=param)


def check_image_size(data: bytes, where: str, max_bytes: int, param: str = "images") -> bytes:
    if not data:
        raise invalid(f"{where} is empty", code="empty_input", param=param)
    if len(data) > max_bytes:
        raise GatewayError(
            ErrorKind.PAYLOAD_TOO_LARGE, f"{where} exceeds {max_bytes} bytes", code="image_too_large", param=param
        )
    return data


def decode_base64_image(item: str, where: str, max_bytes: int, param: str = "images") -> bytes:
    """Base64 (optionally a `data:image/...;base64,` URI) -> bytes, refusing empty and oversized payloads."""
    payload = item.split(",", 1)[1] if item.startswith("data:") else item
    if len(payload) > (max_bytes * 4) // 3 + 4:
        raise GatewayError(
            ErrorKind.PAYLOAD_TOO_LARGE, f"{where} exceeds {max_bytes} bytes", code="image_too_large", param=param
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid(f"{where} is not valid base64", code="invalid_base64", param=param) from exc
    return check_image_size(data, where, max_bytes, param)


def image_error(exc: ImageDecodeError, where: str, param: str) -> GatewayError:
    """A decoding failure as the client sees it: 413 above the pixel limit, 400 otherwise; the message names the
    item and the reason (the decoder's messages carry no internal detail)."""
    if isinstance(exc, ImageTooLarge):
        return GatewayError(ErrorKind.PAYLOAD_TOO_LARGE, f"{where}: {exc}", code="image_too_large", param=param)
    return invalid(f"{where}: {exc}", code="invalid_image", param=param)
