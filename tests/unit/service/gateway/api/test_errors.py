"""Every failure a client can cause is a 4xx with the one JSON error body; nothing becomes a 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.gateway.app import create_app
from service.gateway.inference.fake import FakeBackend
from tests.unit.service.gateway.conftest import AUTH, make_settings


def assert_error(response, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "param"}
    assert error["code"] == code


def test_unknown_route_is_json_404(api: TestClient) -> None:
    assert_error(api.get("/v1/nothing-here"), 404, "not_found")


def test_malformed_json_is_400(api: TestClient) -> None:
    response = api.post("/v1/embeddings", content=b'{"input": ', headers={**AUTH, "Content-Type": "application/json"})
    assert_error(response, 400, "malformed_json")


def test_form_body_is_415(api: TestClient) -> None:
    response = api.post(
        "/v1/embeddings", content=b"input=x", headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_error(response, 415, "unsupported_content_type")


def test_schema_violation_is_422_naming_the_field(api: TestClient) -> None:
    response = api.post("/v1/embeddings", json={"input": 5}, headers=AUTH)
    assert_error(response, 422, "validation_error")
    assert response.json()["error"]["param"].startswith("input")


def test_unknown_field_is_refused(api: TestClient) -> None:
    assert_error(api.post("/v1/embeddings", json={"input": "x", "bogus": 1}, headers=AUTH), 422, "validation_error")


def test_unknown_model_is_404(api: TestClient) -> None:
    assert_error(
        api.post("/v1/embeddings", json={"input": "x", "model": "gpt-4"}, headers=AUTH), 404, "model_not_found"
    )


def test_whitespace_only_text_is_empty_input(api: TestClient) -> None:
    assert_error(api.post("/v1/embeddings", json={"input": ["ok", "   "]}, headers=AUTH), 400, "empty_input")


def test_too_many_inputs(api: TestClient) -> None:
    assert_error(api.post("/v1/embeddings", json={"input": ["x"] * 1000}, headers=AUTH), 400, "too_many_inputs")


def test_body_over_limit_is_413(tokenizer_path: Path) -> None:
    app = create_app(make_settings(tokenizer_path, max_body_bytes=1000), backend=FakeBackend())
    with TestClient(app) as client:
        response = client.post("/v1/embeddings", json={"input": "x" * 5000}, headers=AUTH)
    assert_error(response, 413, "body_too_large")


def test_invalid_base64_image(api: TestClient) -> None:
    assert_error(api.post("/v1/embed/image", json={"images": ["***"]}, headers=AUTH), 400, "invalid_base64")


def test_backend_down_is_503_with_retry_after(api: TestClient, fake_backend: FakeBackend) -> None:
    fake_backend.up = False
    response = api.post("/v1/embeddings", json={"input": "x"}, headers=AUTH)
    assert_error(response, 503, "triton_unavailable")
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize("text", ["a" * 10_000])
def test_overlong_text_is_refused(api: TestClient, text: str) -> None:
    assert_error(api.post("/v1/embeddings", json={"input": text}, headers=AUTH), 400, "input_too_long")


def test_truncate_false_refuses_more_than_64_tokens(api: TestClient) -> None:
    response = api.post("/v1/embeddings", json={"input": "red " * 100, "truncate": False}, headers=AUTH)
    assert_error(response, 400, "input_too_long")


def test_unknown_query_parameter_on_the_hot_path_is_400_naming_it(api: TestClient) -> None:
    response = api.post("/v1/embeddings?dimensions=64", json={"input": "x"}, headers=AUTH)
    assert_error(response, 400, "unknown_query_parameter")
    assert "dimensions" in response.json()["error"]["message"]


def test_unknown_query_parameter_on_a_routed_endpoint_is_400_listing_the_accepted(api: TestClient) -> None:
    response = api.get("/v1/adapters?limt=5", headers=AUTH)
    assert_error(response, 400, "unknown_query_parameter")
    message = response.json()["error"]["message"]
    assert "limt" in message and "accepted: after, limit" in message


def test_declared_query_parameters_still_work(api: TestClient) -> None:
    assert api.get("/v1/adapters?limit=5", headers=AUTH).status_code == 200


def test_query_parameter_on_a_body_endpoint_is_refused(api: TestClient) -> None:
    response = api.post("/v1/classify?temperature=0.5", json={"image": "x", "labels": ["a"]}, headers=AUTH)
    assert_error(response, 400, "unknown_query_parameter")
