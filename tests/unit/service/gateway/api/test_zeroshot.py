"""`/v1/classify` and `/v1/segment` with the fake backend: shapes, echoes, JSON and multipart bodies."""

from __future__ import annotations

import base64
import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from tests.unit.service.gateway.adapters.files import fake_adapter
from tests.unit.service.gateway.conftest import ACME, AUTH


def png(size: tuple[int, int] = (90, 60), seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_classify_returns_a_distribution_per_image(api: TestClient) -> None:
    body = api.post(
        "/v1/classify",
        json={"images": [b64(png(seed=1)), b64(png(seed=2))], "labels": ["cat", "dog", "car"]},
        headers=AUTH,
    ).json()
    assert body["labels"] == ["cat", "dog", "car"] and body["model"] == "tipsv2-fake" and body["adapter"] is None
    for index, item in enumerate(body["data"]):
        assert item["index"] == index and abs(sum(item["probabilities"]) - 1) < 1e-5
        assert item["label"] == body["labels"][int(np.argmax(item["probabilities"]))]
    assert body["usage"] == {"images": 2, "cached_images": 0, "prompts": 27, "cached_prompts": 0}


def test_classify_multipart_equals_json(api: TestClient) -> None:
    images = [png(seed=3), png(seed=4)]
    as_json = api.post(
        "/v1/classify",
        json={"images": [b64(i) for i in images], "labels": ["a", "b"], "templates": ["{}", "a {}"]},
        headers=AUTH,
    ).json()
    as_form = api.post(
        "/v1/classify",
        files=[("images", ("x.png", images[0])), ("images", ("y.png", images[1]))],
        data={"labels": ["a", "b"], "templates": ["{}", "a {}"]},
        headers=AUTH,
    ).json()
    assert as_form["data"] == as_json["data"] and as_form["usage"]["prompts"] == 4


def test_segment_returns_a_label_map_at_the_input_resolution(api: TestClient) -> None:
    for mode in ("whole", "slide"):
        body = api.post(
            "/v1/segment", json={"image": b64(png((130, 70))), "labels": ["a", "b", "c"], "mode": mode}, headers=AUTH
        ).json()
        label_map = np.array(Image.open(io.BytesIO(base64.b64decode(body["label_map"]["data"]))))
        assert label_map.shape == (70, 130) and label_map.max() < 3
        assert (body["label_map"]["width"], body["label_map"]["height"], body["label_map"]["bit_depth"]) == (130, 70, 8)
        shares = [label["pixel_share"] for label in body["labels"]]
        assert abs(sum(shares) - 1) < 1e-9
        assert np.allclose(shares, np.bincount(label_map.ravel(), minlength=3) / label_map.size)
        assert body["mode"] == mode and body["window"] == 56


def test_slide_mode_reports_windows_and_stride(api: TestClient) -> None:
    body = api.post(
        "/v1/segment", json={"image": b64(png((200, 56))), "labels": ["a"], "mode": "slide", "stride": 28}, headers=AUTH
    ).json()
    assert body["stride"] == 28 and body["usage"]["windows"] == 7  # ceil((200 - 56) / 28) + 1


def test_segment_multipart(api: TestClient) -> None:
    response = api.post(
        "/v1/segment", files={"image": ("x.png", png())}, data={"labels": ["a", "b"], "mode": "slide"}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    assert response.json()["mode"] == "slide"


def test_zeroshot_echoes_the_adapter(tenants_api: TestClient) -> None:
    tenants_api.post("/v1/adapters", files={"file": ("a", fake_adapter(1))}, data={"name": "shop"}, headers=ACME)
    for path, body in (("/v1/classify", {"images": [b64(png())]}), ("/v1/segment", {"image": b64(png())})):
        response = tenants_api.post(path, json={**body, "labels": ["a", "b"], "adapter": "shop"}, headers=ACME)
        assert response.status_code == 200, response.text
        assert response.json()["adapter"] == {"name": "shop", "version": 1}


def test_segmentation_work_is_bounded(api: TestClient) -> None:
    big = png((1500, 1000))  # 1.5 MP x 100 labels = 1.5e8 > 2^27
    response = api.post("/v1/segment", json={"image": b64(big), "labels": [f"l{i}" for i in range(100)]}, headers=AUTH)
    assert response.status_code == 413 and response.json()["error"]["code"] == "segmentation_too_large"  # a size limit
