"""`/v1/classify` and `/v1/segment` through the real Triton equal the model library's zero-shot functions
(`training.tipsv2.zeroshot`, torch) on the same inputs, and label prompts are served from the Redis cache."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import ACME, open_gateway, png_bytes, tenant_settings, triton_stats
from training.tipsv2 import zeroshot
from training.tipsv2.preprocess import resize_uint8, to_model_input
from training.tipsv2.tokenizer import Tokenizer

pytestmark = pytest.mark.integration

LABELS = ["a red blob", "a green blob", "a blue blob", "black background"]


@pytest.fixture(scope="module")
def gateway(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path
) -> Iterator[TestClient]:
    with open_gateway(tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store)) as client:
        yield client


@pytest.fixture(scope="module")
def label_vectors(tiny_model, tokenizer_path: Path) -> torch.Tensor:  # type: ignore[no-untyped-def]
    return zeroshot.label_text_embeddings(tiny_model, Tokenizer(tokenizer_path), LABELS)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_classify_equals_the_reference(gateway: TestClient, tiny_model, label_vectors: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
    images = [png_bytes(11), png_bytes(12, (224, 224)), png_bytes(13, (90, 400))]
    response = gateway.post("/v1/classify", json={"images": [b64(i) for i in images], "labels": LABELS}, headers=ACME)
    assert response.status_code == 200, response.text
    body = response.json()
    got = np.array([item["probabilities"] for item in body["data"]])
    pixels = np.stack([resize_uint8(Image.open(io.BytesIO(i)).convert("RGB"), 224) for i in images])
    with torch.no_grad():
        cls1 = tiny_model.encode_image(torch.from_numpy(to_model_input(pixels))).cls1
    want = zeroshot.classify(cls1, label_vectors, float(tiny_model.temperature)).numpy()
    assert np.abs(got - want).max() <= 1e-4
    assert [item["label"] for item in body["data"]] == [LABELS[i] for i in want.argmax(axis=1)]
    assert body["model"] == "tipsv2-tiny" and body["adapter"] is None and body["resolution"] == 224


@pytest.mark.parametrize(
    ("mode", "size", "stride"),
    [("slide", (300, 200), None), ("slide", (230, 470), 100), ("whole", (250, 250), None)],
)
def test_segment_equals_the_reference(  # type: ignore[no-untyped-def]
    gateway: TestClient, tiny_model, label_vectors: torch.Tensor, mode: str, size: tuple[int, int], stride: int | None
) -> None:
    image = png_bytes(21, size)
    payload = {"image": b64(image), "labels": LABELS, "mode": mode, "stride": stride}
    response = gateway.post("/v1/segment", json=payload, headers=ACME)
    assert response.status_code == 200, response.text
    body = response.json()
    got = np.array(Image.open(io.BytesIO(base64.b64decode(body["label_map"]["data"]))))
    want_map, want_probs = zeroshot.segment(
        tiny_model, Image.open(io.BytesIO(image)), label_vectors, mode, window=224, stride=stride
    )
    want_map, want_probs = want_map.numpy(), want_probs.numpy()
    assert got.shape == want_map.shape == (size[1], size[0])
    assert (body["label_map"]["width"], body["label_map"]["height"]) == size
    # Equal up to float rounding: pixels may differ only where the reference's two best labels (nearly) tie.
    top2 = np.sort(want_probs, axis=0)[-2:]
    decided = (top2[1] - top2[0]) > 1e-4
    assert (got == want_map)[decided].all()
    assert (got == want_map).mean() >= 0.999
    shares = np.bincount(want_map.ravel(), minlength=len(LABELS)) / want_map.size
    assert (shares > 0.05).sum() >= 2, "the test image should split into several labels"
    assert np.abs(np.array([label["pixel_share"] for label in body["labels"]]) - shares).max() <= 1e-3
    assert body["mode"] == mode and body["window"] == 224


def test_label_prompts_come_from_the_cache_the_second_time(gateway: TestClient, triton: TritonServer) -> None:
    payload = {"images": [b64(png_bytes(31))], "labels": ["a cached label", "another cached label"]}
    first = gateway.post("/v1/classify", json=payload, headers=ACME).json()
    assert first["usage"]["prompts"] == 18
    text_count = triton_stats(triton)["tipsv2_text"]
    second = gateway.post("/v1/classify", json=payload, headers=ACME).json()
    assert second["usage"]["cached_prompts"] == second["usage"]["prompts"] == 18
    assert second["usage"]["cached_images"] == 1
    assert triton_stats(triton)["tipsv2_text"] == text_count
    assert second["data"] == first["data"]


def test_segment_prompts_share_the_cache_with_classify(gateway: TestClient) -> None:
    labels = ["a shared label", "a second shared label"]
    gateway.post("/v1/classify", json={"images": [b64(png_bytes(41))], "labels": labels}, headers=ACME)
    response = gateway.post("/v1/segment", json={"image": b64(png_bytes(42)), "labels": labels}, headers=ACME)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["cached_prompts"] == 18
