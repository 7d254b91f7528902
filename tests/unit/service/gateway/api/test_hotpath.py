"""The hot path serves JSON bodies of the two embedding endpoints straight from ASGI, with the answers the FastAPI
routes give (the rest of tests/unit/service/gateway/api goes through it too); everything else goes to FastAPI."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from service.gateway.api.hotpath import hot_route
from tests.unit.service.gateway.conftest import AUTH


def scope(path: str, content_type: bytes | None, method: str = "POST") -> dict:
    headers = [(b"content-type", content_type)] if content_type is not None else []
    return {"type": "http", "method": method, "path": path, "headers": headers}


def test_only_json_posts_to_the_embedding_endpoints_take_the_hot_path() -> None:
    assert hot_route(scope("/v1/embeddings", b"application/json")) is not None
    assert hot_route(scope("/v1/embed/image", b"application/json; charset=utf-8")) is not None
    assert hot_route(scope("/v1/embed/image", b"application/vnd.api+json")) is not None
    assert hot_route(scope("/v1/embed/image", b"multipart/form-data; boundary=x")) is None
    assert hot_route(scope("/v1/embeddings", b"text/plain")) is None
    assert hot_route(scope("/v1/embeddings", None)) is None
    assert hot_route(scope("/v1/embeddings", b"application/json", "GET")) is None
    assert hot_route(scope("/v1/classify", b"application/json")) is None


def chunks(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_streamed_body_over_the_limit_is_413_without_content_length(api: TestClient) -> None:
    limit = api.app.state.tipsv2.settings.limits.max_body_bytes  # type: ignore[attr-defined]
    body = b'{"input": "' + b"x" * (limit + 10) + b'"}'
    response = api.post(
        "/v1/embeddings", content=chunks(body, 1 << 20), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"


def test_missing_key_is_401_with_www_authenticate(api: TestClient) -> None:
    response = api.post("/v1/embeddings", json={"input": "x"})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "missing_api_key"


def test_a_lone_surrogate_escape_is_named_not_called_malformed(api: TestClient) -> None:
    response = api.post(
        "/v1/embeddings", content=b'{"input": "a \\ud800 b"}', headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_text"


def test_hot_path_responses_carry_their_length(api: TestClient) -> None:
    response = api.post("/v1/embeddings", json={"input": "x"}, headers=AUTH)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
