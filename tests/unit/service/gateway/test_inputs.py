"""Content checks the schemas cannot express: each refusal is a 4xx naming the field."""

from __future__ import annotations

import base64

import pytest

from service.gateway.core.errors import GatewayError
from service.gateway.inputs import decode_base64_image, validate_labels, validate_templates, validate_texts


def refused(call, code: str, status: int = 400) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as info:
        call()
    assert (info.value.status, info.value.code) == (status, code)


@pytest.mark.parametrize(
    ("texts", "code"),
    [
        ([], "empty_input"),
        (["ok", " "], "empty_input"),
        (["a"] * 5, "too_many_inputs"),
        (["x" * 11], "input_too_long"),
        (["a \ud800 b"], "invalid_text"),
    ],
)
def test_texts_are_refused(texts: list[str], code: str) -> None:
    refused(lambda: validate_texts(texts, max_items=4, max_chars=10), code)


@pytest.mark.parametrize(
    ("labels", "code"),
    [
        ([], "empty_input"),
        (["a", "a"], "duplicate_labels"),
        (["a", "b", "c"], "too_many_labels"),
        (["\udfff"], "invalid_text"),
    ],
)
def test_labels_are_refused(labels: list[str], code: str) -> None:
    refused(lambda: validate_labels(labels, max_labels=2, max_chars=20), code)


@pytest.mark.parametrize("template", ["no slot", "{} and {}", "{0}", "{x} {}", "{{}}", "{} }"])
def test_templates_need_exactly_one_plain_slot(template: str) -> None:
    refused(lambda: validate_templates([template], max_templates=4, max_chars=100), "invalid_template")


def test_good_templates_pass() -> None:
    validate_templates(["a photo of a {}.", "{}"], max_templates=4, max_chars=100)


def test_base64_images() -> None:
    png = b"\x89PNG fake"
    assert decode_base64_image("data:image/png;base64," + base64.b64encode(png).decode(), "images[0]", 100) == png
    refused(lambda: decode_base64_image("***", "images[0]", 100), "invalid_base64")
    refused(lambda: decode_base64_image("", "images[0]", 100), "empty_input")
    refused(
        lambda: decode_base64_image(base64.b64encode(b"x" * 200).decode(), "images[0]", 100), "image_too_large", 413
    )
