"""Real photos as people send them, through the real gateway and tritonserver: every variant of the corpus
(`tests/photos.py`: each EXIF orientation, 16-bit, CMYK, palette with transparency, progressive JPEG, WebP, GIF,
ICC, ...) embeds as the PyTorch reference embeds the upright RGB picture, within 1e-4."""

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

from service.gateway.core.config import LimitSettings
from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer
from tests import photos
from tests.integration.gateway_support import ACME, open_gateway, tenant_settings
from training.tipsv2.preprocess import resize_uint8, to_model_input

pytestmark = pytest.mark.integration

CORPUS = photos.corpus()
RESOLUTION = 224


@pytest.fixture(scope="module")
def settings(triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path):  # type: ignore[no-untyped-def]
    return tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store)


@pytest.fixture(scope="module")
def gateway(settings) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with open_gateway(settings) as client:
        yield client


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def embed(client: TestClient, images: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    payload = {"images": [b64(i) for i in images], "normalize": False}
    response = client.post("/v1/embed/image", json=payload, headers=ACME)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    cls1 = np.array([d["embedding"] for d in data], dtype=np.float32)
    return cls1, np.array([d["embedding_cls2"] for d in data], dtype=np.float32)


def reference(tiny_model, pictures: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """The PyTorch model on the official preprocessing of upright RGB pictures."""
    pixels = np.stack([resize_uint8(Image.fromarray(p), RESOLUTION) for p in pictures])
    with torch.no_grad():
        features = tiny_model.encode_image(torch.from_numpy(to_model_input(pixels)))
    return features.cls1.numpy(), features.cls2.numpy()


@pytest.mark.parametrize("photo", photos.PHOTOS)
def test_every_variant_embeds_as_its_upright_picture(gateway: TestClient, tiny_model, photo: str) -> None:  # type: ignore[no-untyped-def]
    variants = [v for v in CORPUS if v.photo == photo]
    got_cls1, got_cls2 = embed(gateway, [v.data for v in variants])
    want_cls1, want_cls2 = reference(tiny_model, [v.expected for v in variants])
    for i, variant in enumerate(variants):
        error = max(np.abs(got_cls1[i] - want_cls1[i]).max(), np.abs(got_cls2[i] - want_cls2[i]).max())
        assert error <= 1e-4, (variant.id, error)


def test_sideways_photo_is_embedded_upright(gateway: TestClient) -> None:
    """Defect 1: the stored (sideways) pixels of an orientation-6 photo are not what gets embedded."""
    rgb = photos.photo("rocket.jpg")
    sideways = photos.with_orientation(rgb, 6, "PNG")
    upright, stored = embed(gateway, [photos.encode(Image.fromarray(rgb), "PNG"), sideways])[0]
    raw_stored = embed(gateway, [photos.encode(Image.fromarray(photos.STORED[6](rgb)), "PNG")])[0][0]
    assert np.abs(upright - stored).max() <= 1e-5
    assert np.abs(raw_stored - stored).max() > 1e-2


def test_segmentation_map_has_the_displayed_orientation(gateway: TestClient) -> None:
    """Defect 1: a 640x427 photo stored sideways (orientation 6) displays 427 wide; so is its label map, equal to
    the map of the upright file."""
    rgb = photos.photo("rocket.jpg")
    maps = []
    for data in (photos.with_orientation(rgb, 6, "PNG"), photos.encode(Image.fromarray(rgb), "PNG")):
        response = gateway.post("/v1/segment", json={"image": b64(data), "labels": ["sky", "rocket"]}, headers=ACME)
        assert response.status_code == 200, response.text
        label_map = response.json()["label_map"]
        assert (label_map["width"], label_map["height"]) == (640, 427)
        maps.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(label_map["data"])))))
    assert maps[0].shape == (427, 640) and np.array_equal(maps[0], maps[1])


def test_16_bit_scan_is_not_a_white_page(gateway: TestClient, tiny_model) -> None:  # type: ignore[no-untyped-def]
    """Defect 2: a 16-bit grayscale scan used to embed as a blank white image."""
    scan = next(v for v in CORPUS if v.id == "coffee-gray16-png")
    white = photos.encode(Image.new("RGB", (600, 400), (255, 255, 255)), "PNG")
    (got_scan, got_white), _ = embed(gateway, [scan.data, white])
    assert np.abs(got_scan - got_white).max() > 1e-2
    want = reference(tiny_model, [scan.expected])[0][0]
    assert np.abs(got_scan - want).max() <= 1e-4


def test_large_jpeg_embeds_close_to_the_full_decode_and_exactly_without_draft(settings, tiny_model) -> None:  # type: ignore[no-untyped-def]
    """Rule 3: a large JPEG is decoded by DCT scaling (close to the reference); TIPS_LIMITS__JPEG_DRAFT=false gives
    the reference decoding exactly."""
    big = Image.fromarray(photos.photo("astronaut.png")).resize((2048, 2048), Image.Resampling.BICUBIC)
    data = photos.encode(big, "JPEG", quality=90)
    want = reference(tiny_model, [photos.reference_decode(data)])[0][0]
    with open_gateway(settings) as client:
        draft = embed(client, [data])[0][0]
    exact_limits = LimitSettings(jpeg_draft=False)
    with open_gateway(settings.model_copy(update={"limits": exact_limits})) as client:
        exact = embed(client, [data])[0][0]
    assert np.abs(exact - want).max() <= 1e-4
    cosine = float(draft @ want / (np.linalg.norm(draft) * np.linalg.norm(want)))
    assert 1e-4 < np.abs(draft - want).max() and cosine > 0.999, cosine
