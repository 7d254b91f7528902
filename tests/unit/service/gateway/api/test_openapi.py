"""Every endpoint is in the OpenAPI document, image endpoints with both body types, errors with the one body."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_every_endpoint_is_documented(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    expected = {
        ("/v1/embeddings", "post"),
        ("/v1/embed/image", "post"),
        ("/v1/classify", "post"),
        ("/v1/segment", "post"),
        ("/v1/adapters", "post"),
        ("/v1/adapters", "get"),
        ("/v1/adapters/{name}", "get"),
        ("/v1/adapters/{name}", "delete"),
        ("/v1/adapters/{name}/activate", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    }
    assert expected <= {(path, method) for path, methods in paths.items() for method in methods}


def test_image_endpoints_take_json_or_multipart(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path, field in (("/v1/embed/image", "images"), ("/v1/classify", "images"), ("/v1/segment", "image")):
        content = paths[path]["post"]["requestBody"]["content"]
        assert set(content) == {"application/json", "multipart/form-data"}
        assert field in content["application/json"]["schema"]["properties"]
        assert field in content["multipart/form-data"]["schema"]["required"]
    upload = paths["/v1/adapters"]["post"]["requestBody"]["content"]
    assert set(upload) == {"multipart/form-data", "application/octet-stream"}


def test_errors_are_documented_with_the_error_body(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    responses = document["paths"]["/v1/segment"]["post"]["responses"]
    assert {"400", "401", "404", "413", "429", "503"} <= set(responses)
    assert responses["429"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
