"""`/v1/adapters` end to end: uploads are validated and versioned, the adapter Triton applies is the uploaded one
(equal to the PyTorch model with that adapter), versions can be pinned, activated and deleted."""

from __future__ import annotations

import base64
import hashlib
import io
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import (
    ACME,
    adapter_file,
    metric_value,
    open_gateway,
    png_bytes,
    served_model_id,
    tenant_settings,
    unique_name,
    upload,
)
from training.contracts.adapter_file import load_adapter_arrays
from training.tipsv2.preprocess import resize_uint8, to_model_input
from training.tipsv2.tokenizer import Tokenizer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path
) -> Iterator[TestClient]:
    with open_gateway(tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store)) as client:
        yield client


@pytest.fixture(scope="module")
def model_id(gateway: TestClient) -> str:
    return served_model_id(gateway)


def apply_adapter(x: torch.Tensor, arrays: dict[str, np.ndarray], modality: str) -> torch.Tensor:
    """x + up(relu(down(x))): the AdaLink map on the tokens the first block sees."""
    down, up = (torch.from_numpy(arrays[f"{modality}.{part}"]) for part in ("down", "up"))
    return x + torch.relu(x @ down.T) @ up.T


def test_adapted_text_and_image_embeddings_equal_the_model_with_the_adapter(  # type: ignore[no-untyped-def]
    gateway: TestClient, model_id: str, tiny_model, tokenizer_path: Path
) -> None:
    name, data = unique_name(), adapter_file(model_id, seed=5)
    upload(gateway, ACME, name, data)
    arrays = load_adapter_arrays(data)
    texts = ["an adapted sentence", "another one"]
    body = gateway.post(
        "/v1/embeddings", json={"input": texts, "adapter": name, "normalize": False}, headers=ACME
    ).json()
    assert body["adapter"] == {"name": name, "version": 1}
    ids = torch.from_numpy(Tokenizer(tokenizer_path)(texts)[0]).long()
    text = tiny_model.text
    with torch.no_grad():
        want = text.trunk(apply_adapter(text.embed(ids), arrays, "text"), text.token_mask(ids)).numpy()
        base = tiny_model.encode_text(ids).numpy()
    got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    assert np.abs(got - want).max() <= 1e-4 and np.abs(got - base).max() > 1e-2

    image = png_bytes(3)
    payload = {"images": [base64.b64encode(image).decode()], "adapter": name, "normalize": False}
    body = gateway.post("/v1/embed/image", json=payload, headers=ACME).json()
    pixels = torch.from_numpy(to_model_input(resize_uint8(Image.open(io.BytesIO(image)).convert("RGB"), 224)[None]))
    visual = tiny_model.visual
    with torch.no_grad():
        want_image = visual.split(visual.trunk(apply_adapter(visual.embed(pixels), arrays, "image"))).cls1.numpy()
    assert np.abs(np.array([body["data"][0]["embedding"]]) - want_image).max() <= 1e-4


def test_lifecycle_upload_list_show_activate_pin_delete(gateway: TestClient, model_id: str) -> None:
    name = unique_name()
    first = upload(gateway, ACME, name, adapter_file(model_id, seed=1))
    assert (first["uploaded_version"], first["active_version"]) == (1, 1)
    raw = gateway.post(
        f"/v1/adapters?name={name}",
        content=adapter_file(model_id, seed=2),
        headers={**ACME, "Content-Type": "application/octet-stream"},
    )
    assert raw.status_code == 201 and raw.json()["uploaded_version"] == 2 and raw.json()["active_version"] == 2
    listed = {a["name"]: a for a in gateway.get("/v1/adapters", headers=ACME).json()["data"]}
    assert [v["version"] for v in listed[name]["versions"]] == [1, 2]
    shown = gateway.get(f"/v1/adapters/{name}", headers=ACME).json()
    assert shown["active_version"] == 2 and shown["versions"][1]["active"] and shown["versions"][0]["digest"]

    def served_version(ref: str) -> int:
        response = gateway.post("/v1/embeddings", json={"input": "which version", "adapter": ref}, headers=ACME)
        assert response.status_code == 200, response.text
        return int(response.json()["adapter"]["version"])

    assert served_version(name) == 2 and served_version(f"{name}@1") == 1
    assert gateway.post(f"/v1/adapters/{name}/activate", json={"version": 1}, headers=ACME).status_code == 200
    assert served_version(name) == 1 and served_version(f"{name}@2") == 2

    refused = gateway.delete(f"/v1/adapters/{name}?version=1", headers=ACME)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "adapter_version_active"
    one = gateway.delete(f"/v1/adapters/{name}?version=2", headers=ACME).json()
    assert one["deleted_versions"] == [2] and not one["adapter_deleted"]
    gone = gateway.post("/v1/embeddings", json={"input": "x", "adapter": f"{name}@2"}, headers=ACME)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "adapter_version_not_found"
    assert gateway.delete(f"/v1/adapters/{name}", headers=ACME).json()["adapter_deleted"]
    unknown = gateway.post("/v1/embeddings", json={"input": "x", "adapter": name}, headers=ACME)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "adapter_not_found"
    # Version numbers are never reused, not even after the adapter was deleted and re-created.
    assert upload(gateway, ACME, name, adapter_file(model_id, seed=3))["uploaded_version"] == 3


def test_concurrent_uploads_of_one_name_get_distinct_versions(gateway: TestClient, model_id: str) -> None:
    name, results = unique_name(), []
    files = [adapter_file(model_id, seed=10 + i) for i in range(6)]

    def post(data: bytes) -> None:
        response = gateway.post("/v1/adapters", files={"file": ("a", data)}, data={"name": name}, headers=ACME)
        results.append((response.status_code, response.json().get("uploaded_version")))

    threads = [threading.Thread(target=post, args=(data,)) for data in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == [(201, v) for v in range(1, 7)]
    shown = gateway.get(f"/v1/adapters/{name}", headers=ACME).json()
    assert sorted(v["sha256"] for v in shown["versions"]) == sorted(hashlib.sha256(d).hexdigest() for d in files)


def test_image_only_adapter_adapts_images_and_leaves_label_prompts_to_the_base_model(
    gateway: TestClient, model_id: str
) -> None:
    name = unique_name()
    upload(gateway, ACME, name, adapter_file(model_id, seed=7, modalities=("image",)))
    text = gateway.post("/v1/embeddings", json={"input": "x", "adapter": name}, headers=ACME)
    assert text.status_code == 400 and text.json()["error"]["code"] == "adapter_modality_mismatch"
    image = base64.b64encode(png_bytes(8)).decode()
    labels = {"labels": ["one label", "two label"]}
    adapted = gateway.post("/v1/classify", json={"images": [image], "adapter": name, **labels}, headers=ACME)
    base = gateway.post("/v1/classify", json={"images": [image], **labels}, headers=ACME)
    assert adapted.status_code == base.status_code == 200
    assert adapted.json()["adapter"] == {"name": name, "version": 1}
    assert adapted.json()["data"][0]["probabilities"] != base.json()["data"][0]["probabilities"]


@pytest.mark.parametrize(
    ("make", "status", "code", "outcome"),
    [
        (lambda m: adapter_file("0" * 16), 400, "invalid_adapter", "invalid"),  # trained for another base model
        (lambda m: adapter_file(m, dim=32), 400, "invalid_adapter", "invalid"),  # wrong width
        (lambda m: pickle.dumps({"text.down": np.zeros((4, 64))}), 400, "invalid_adapter", "invalid"),
        (lambda m: adapter_file(m)[:-7], 400, "invalid_adapter", "invalid"),  # truncated
        (lambda m: b"", 400, "invalid_adapter", "invalid"),
        (lambda m: b"\0" * (17 << 20), 413, "adapter_too_large", "too_large"),
    ],
)
def test_invalid_uploads_are_refused_and_counted(  # type: ignore[no-untyped-def]
    gateway: TestClient, model_id: str, make, status: int, code: str, outcome: str
) -> None:
    before = metric_value(gateway.get("/metrics").text, "tipsv2_adapter_uploads_total", tenant="acme", outcome=outcome)
    name = unique_name()
    response = gateway.post("/v1/adapters", files={"file": ("a", make(model_id))}, data={"name": name}, headers=ACME)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert gateway.get(f"/v1/adapters/{name}", headers=ACME).status_code == 404
    after = metric_value(gateway.get("/metrics").text, "tipsv2_adapter_uploads_total", tenant="acme", outcome=outcome)
    assert after == before + 1


def test_activation_and_deletion_are_counted(gateway: TestClient, model_id: str) -> None:
    name = unique_name()
    upload(gateway, ACME, name, adapter_file(model_id, seed=1))
    upload(gateway, ACME, name, adapter_file(model_id, seed=2))
    text = gateway.get("/metrics").text
    activations = metric_value(text, "tipsv2_adapter_activations_total", tenant="acme")
    deletions = metric_value(text, "tipsv2_adapter_deletions_total", tenant="acme")
    gateway.post(f"/v1/adapters/{name}/activate", json={"version": 1}, headers=ACME)
    gateway.delete(f"/v1/adapters/{name}", headers=ACME)
    text = gateway.get("/metrics").text
    assert metric_value(text, "tipsv2_adapter_activations_total", tenant="acme") == activations + 1
    assert metric_value(text, "tipsv2_adapter_deletions_total", tenant="acme") == deletions + 1
