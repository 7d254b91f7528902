"""`/v1/embeddings` speaks OpenAI's format: list of embeddings, usage, float or base64 encodings."""

from __future__ import annotations

import base64

import numpy as np
from fastapi.testclient import TestClient

from tests.unit.service.gateway.conftest import AUTH


def test_openai_shape_and_normalisation(api: TestClient) -> None:
    body = api.post("/v1/embeddings", json={"input": ["a", "b c"]}, headers=AUTH).json()
    assert body["object"] == "list" and body["model"] == "tipsv2-fake" and body["adapter"] is None
    assert [d["index"] for d in body["data"]] == [0, 1]
    vectors = np.array([d["embedding"] for d in body["data"]])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert body["usage"]["prompt_tokens"] > 0


def test_base64_equals_float(api: TestClient) -> None:
    as_float = api.post("/v1/embeddings", json={"input": "a cat"}, headers=AUTH).json()["data"][0]["embedding"]
    as_b64 = api.post("/v1/embeddings", json={"input": "a cat", "encoding_format": "base64"}, headers=AUTH).json()[
        "data"
    ][0]["embedding"]
    decoded = np.frombuffer(base64.b64decode(as_b64), dtype="<f4")
    assert np.allclose(decoded, as_float, atol=1e-7)


def test_string_input_equals_single_item_list(api: TestClient) -> None:
    single = api.post("/v1/embeddings", json={"input": "a dog"}, headers=AUTH).json()["data"]
    listed = api.post("/v1/embeddings", json={"input": ["a dog"]}, headers=AUTH).json()["data"]
    assert single == listed


def test_metrics_count_requests_by_route_template(api: TestClient) -> None:
    api.post("/v1/embeddings", json={"input": "x"}, headers=AUTH)
    text = api.get("/metrics").text
    assert 'tipsv2_requests_total{endpoint="/v1/embeddings",method="POST",status="200"}' in text
