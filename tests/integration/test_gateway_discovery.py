"""An API with no surprises, on the real gateway and tritonserver: what is served is listed (`GET /v1/models`),
documented parameters do what the docs say (classify `temperature`, 16-bit label maps), and `/docs` and `/redoc`
load everything from the gateway itself, with no network."""

from __future__ import annotations

import base64
import io
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.gateway.api.docs import ASSETS_DIR
from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import ACME, open_gateway, png_bytes, tenant_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path
) -> Iterator[TestClient]:
    with open_gateway(tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store)) as client:
        yield client


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_models_lists_what_is_served(gateway: TestClient, tiny_model) -> None:  # type: ignore[no-untyped-def]
    """Defect 8: resolutions, width and text length were discoverable only from error messages."""
    response = gateway.get("/v1/models", headers=ACME)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and len(body["data"]) == 1
    card = body["data"][0]
    ready = gateway.get("/readyz").json()
    assert card["id"] == ready["model"] == "tipsv2-tiny" and card["version"] == ready["model_id"]
    assert card["object"] == "model"
    assert card["embedding_dim"] == tiny_model.cfg.embed_dim
    assert card["image"] == {"resolutions": [224, 112], "default_resolution": 224, "patch_size": 14}
    assert card["text"] == {"max_tokens": tiny_model.cfg.text_cfg.max_len}
    assert card["modalities"] == ["text", "image"]
    assert card["adapters"] == ["text", "image"]
    assert card["classify_temperature"] == pytest.approx(float(tiny_model.temperature))
    for resolution in card["image"]["resolutions"]:  # what it lists is what it serves
        payload = {"images": [b64(png_bytes(3))], "resolution": resolution}
        assert gateway.post("/v1/embed/image", json=payload, headers=ACME).json()["resolution"] == resolution
    assert gateway.get("/v1/models").status_code == 401
    assert gateway.get("/v1/models/tipsv2-tiny", headers=ACME).json() == card
    missing = gateway.get("/v1/models/gpt-4", headers=ACME)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_classify_temperature_is_a_parameter_with_the_models_default(gateway: TestClient) -> None:
    """Defect 5: the README's formula has a temperature; sending one used to be a 422."""
    images, labels = [b64(png_bytes(21)), b64(png_bytes(22))], ["red", "green", "blue"]
    default = gateway.post("/v1/classify", json={"images": images, "labels": labels}, headers=ACME).json()
    served = gateway.get("/v1/models", headers=ACME).json()["data"][0]
    assert default["temperature"] == served["classify_temperature"]
    probs = {}
    for temperature in (0.5, 2.0):
        body = {"images": images, "labels": labels, "temperature": temperature}
        response = gateway.post("/v1/classify", json=body, headers=ACME)
        assert response.status_code == 200, response.text
        assert response.json()["temperature"] == temperature
        probs[temperature] = np.array([d["probabilities"] for d in response.json()["data"]])
    # softmax(cos / 2) recovered from softmax(cos / 0.5): the temperature is applied as documented
    logits = np.log(probs[0.5]) * 0.5 / 2.0
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    assert np.abs(expected - probs[2.0]).max() < 1e-4
    assert np.abs(probs[0.5] - probs[2.0]).max() > 1e-3


def test_more_than_256_labels_give_a_16_bit_map_with_default_limits(gateway: TestClient) -> None:
    """Defect 7: 16-bit maps were documented "above 256 labels" while the default limit was 256."""
    labels = [f"label {i}" for i in range(300)]
    body = {"image": b64(png_bytes(5, (120, 90))), "labels": labels, "templates": ["{}"]}
    response = gateway.post("/v1/segment", json=body, headers=ACME)
    assert response.status_code == 200, response.text
    label_map = response.json()["label_map"]
    assert label_map["bit_depth"] == 16
    image = Image.open(io.BytesIO(base64.b64decode(label_map["data"])))
    assert image.mode.startswith("I") and image.size == (120, 90)
    assert np.asarray(image).max() < 300


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection or name lookup beyond the loopback interface fails, as on a cluster without internet."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost") and not str(host).startswith("/"):
            raise OSError(f"network disabled in this test: {address}")
        real_connect(self, address)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if host not in ("127.0.0.1", "::1", "localhost", None):
            raise socket.gaierror(f"network disabled in this test: {host}")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
@pytest.mark.usefixtures("no_network")
def test_docs_load_offline_from_the_gateway(gateway: TestClient, page: str) -> None:
    """Defect 9: /docs loaded Swagger UI from a CDN, a blank page without internet."""
    html = gateway.get(page).text
    assert not re.findall(r"https?://", html), "the page references another host"
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert referenced and all(url.startswith("/docs-assets/") for url in referenced), referenced
    for url in referenced:
        response = gateway.get(url)
        assert response.status_code == 200, url
        assert response.content == (ASSETS_DIR / url.rsplit("/", 1)[1]).read_bytes()
    spec = re.search(r"url: '([^']+)'|spec-url=\"([^\"]+)\"", html)
    assert spec is not None and gateway.get(next(g for g in spec.groups() if g)).json()["paths"]["/v1/models"]
