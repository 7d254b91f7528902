"""`/v1/embed/image` accepts base64 JSON and multipart files, with the same result."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from tests.unit.service.gateway.api.test_zeroshot import png
from tests.unit.service.gateway.conftest import AUTH


def test_multipart_equals_json(api: TestClient) -> None:
    images = [png(seed=5), png((40, 90), seed=6)]
    as_json = api.post(
        "/v1/embed/image",
        json={"images": [base64.b64encode(i).decode() for i in images], "return_patch_tokens": True},
        headers=AUTH,
    )
    as_form = api.post(
        "/v1/embed/image",
        files=[("images", ("a.png", images[0], "image/png")), ("images", ("b.png", images[1], "image/png"))],
        data={"return_patch_tokens": "true", "encoding_format": "float"},
        headers=AUTH,
    )
    assert as_json.status_code == as_form.status_code == 200, as_form.text
    assert as_form.json()["data"] == as_json.json()["data"]
    assert as_form.json()["data"][0]["patch_tokens"]["grid"] == [4, 4]


def test_multipart_form_fields_are_validated_like_json(api: TestClient) -> None:
    response = api.post(
        "/v1/embed/image", files=[("images", ("a.png", png()))], data={"resolution": "big"}, headers=AUTH
    )
    assert response.status_code == 422 and response.json()["error"]["param"] == "resolution"
    response = api.post("/v1/embed/image", files=[("images", ("a.png", png()))], data={"colour": "red"}, headers=AUTH)
    assert response.status_code == 422
