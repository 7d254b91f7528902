"""Requests flow gateway -> real Triton (ensembles running the exported ONNX) -> real Redis, and come back equal
to the PyTorch model."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
import tritonclient.grpc as grpcclient
from fastapi.testclient import TestClient
from PIL import Image

from service.tools.local.tritonserver import TritonServer
from tests.integration.conftest import AUTH
from training.tipsv2.preprocess import resize_uint8, to_model_input
from training.tipsv2.tokenizer import Tokenizer

pytestmark = pytest.mark.integration


def png_bytes(seed: int, size: tuple[int, int] = (300, 200)) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def metric_value(client: TestClient, name: str, **labels: str) -> float:
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def triton_inference_count(triton: TritonServer, model: str) -> int:
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{triton.grpc_port}")
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    return int(stats.get("inference_count", 0))


def test_text_embeddings_equal_pytorch(gateway: TestClient, tiny_model, tokenizer_path) -> None:  # type: ignore[no-untyped-def]
    texts = ["a red circle on grass", "Two BLUE squares above a yellow star.", "x " * 200]
    response = gateway.post("/v1/embeddings", json={"input": texts, "normalize": False}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    got = np.array([item["embedding"] for item in body["data"]], dtype=np.float32)
    ids, _ = Tokenizer(tokenizer_path)(texts)
    with torch.no_grad():
        want = tiny_model.encode_text(torch.from_numpy(ids).long()).numpy()
    assert np.abs(got - want).max() <= 1e-4
    assert body["model"] == "tipsv2-tiny"
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0


def test_image_embeddings_equal_pytorch(gateway: TestClient, tiny_model) -> None:  # type: ignore[no-untyped-def]
    images = [png_bytes(1), png_bytes(2, (224, 224))]
    payload = {
        "images": [base64.b64encode(b).decode() for b in images],
        "normalize": False,
        "return_patch_tokens": True,
    }
    response = gateway.post("/v1/embed/image", json=payload, headers=AUTH)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    pixels = np.stack([resize_uint8(Image.open(io.BytesIO(b)).convert("RGB"), 224) for b in images])
    with torch.no_grad():
        want = tiny_model.encode_image(torch.from_numpy(to_model_input(pixels)))
    got_cls1 = np.array([d["embedding"] for d in data], dtype=np.float32)
    got_cls2 = np.array([d["embedding_cls2"] for d in data], dtype=np.float32)
    assert np.abs(got_cls1 - want.cls1.numpy()).max() <= 1e-4
    assert np.abs(got_cls2 - want.cls2.numpy()).max() <= 1e-4
    patches = np.frombuffer(base64.b64decode(data[0]["patch_tokens"]["data"]), dtype="<f2").reshape(16, 16, -1)
    assert data[0]["patch_tokens"]["grid"] == [16, 16]
    # float16 transport: compare at half precision
    assert np.abs(patches.astype(np.float32) - want.patch_tokens[0].numpy().reshape(16, 16, -1)).max() <= 1e-2


def test_repeated_request_is_served_from_redis(gateway: TestClient, triton: TritonServer) -> None:
    payload = {"input": ["cached text about a purple hexagon"], "encoding_format": "base64"}
    first = gateway.post("/v1/embeddings", json=payload, headers=AUTH)
    assert first.status_code == 200, first.text
    hits_before = metric_value(gateway, "tipsv2_cache_hits_total", modality="text")
    count_before = triton_inference_count(triton, "tipsv2_text")
    second = gateway.post("/v1/embeddings", json=payload, headers=AUTH)
    assert second.status_code == 200
    assert second.json()["data"] == first.json()["data"]
    assert metric_value(gateway, "tipsv2_cache_hits_total", modality="text") == hits_before + 1
    assert triton_inference_count(triton, "tipsv2_text") == count_before


def test_image_cache_hit_skips_triton(gateway: TestClient, triton: TritonServer) -> None:
    payload = {"images": [base64.b64encode(png_bytes(7)).decode()]}
    assert gateway.post("/v1/embed/image", json=payload, headers=AUTH).status_code == 200
    count_before = triton_inference_count(triton, "tipsv2_image")
    again = gateway.post("/v1/embed/image", json=payload, headers=AUTH)
    assert again.status_code == 200 and again.json()["usage"]["cached"] == 1
    assert triton_inference_count(triton, "tipsv2_image") == count_before


@pytest.mark.parametrize(
    ("path", "payload", "headers", "status", "code"),
    [
        (
            "/v1/embed/image",
            {"images": [base64.b64encode(b"\x89PNG\r\n\x1a\nnot really").decode()]},
            AUTH,
            400,
            "invalid_image",
        ),
        ("/v1/embeddings", {"input": ""}, AUTH, 400, "empty_input"),
        ("/v1/embeddings", {"input": []}, AUTH, 400, "empty_input"),
        ("/v1/embeddings", {"input": "hello"}, {}, 401, "missing_api_key"),
        ("/v1/embeddings", {"input": "hello"}, {"Authorization": "Bearer wrong"}, 401, "invalid_api_key"),
    ],
)
def test_bad_input_gets_a_json_4xx(
    gateway: TestClient, path: str, payload: dict, headers: dict, status: int, code: str
) -> None:
    response = gateway.post(path, json=payload, headers=headers)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["type"].endswith("error")
