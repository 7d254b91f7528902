"""Cross-request batching against the real tritonserver: concurrent requests of two tenants, with and without their
adapters (the same adapter name in both), texts and images of two resolutions with and without patch tokens, in a
shuffled order, share Triton calls, and each request gets exactly the rows Triton gives it when asked alone; a
request naming an adapter Triton cannot load fails alone."""

from __future__ import annotations

import asyncio
import base64
import random
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from service.gateway.app import create_app
from service.gateway.core.config import Settings, TritonSettings
from service.gateway.state import AppState
from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import (
    ACME,
    GLOBEX,
    adapter_file,
    metric_value,
    open_gateway,
    png_bytes,
    served_model_id,
    tenant_settings,
    unique_name,
    upload,
)
from training.tipsv2.preprocess import decode_image, resize_uint8
from training.tipsv2.tokenizer import Tokenizer

pytestmark = pytest.mark.integration
IMAGES = [png_bytes(seed, (120 + 10 * seed, 90)) for seed in range(4)]


def batching_settings(triton: TritonServer, redis_url: str, tokenizer_path: Path, adapter_store: Path) -> Settings:
    """One call in flight per lane: every request that arrives meanwhile waits and joins the next call."""
    batching = TritonSettings(url=f"127.0.0.1:{triton.grpc_port}", timeout_s=30, max_calls_in_flight=1)
    settings = tenant_settings(triton, redis_url, tokenizer_path, adapter_store)
    return settings.model_copy(update={"triton": batching})


def direct(triton: TritonServer, model: str, name: str, array: np.ndarray, adapter: str, outputs: list[str]) -> dict:
    """One request straight to Triton, alone: the reference for the rows of one gateway request."""
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{triton.grpc_port}")
    data = grpcclient.InferInput(name, list(array.shape), "INT32" if array.dtype == np.int32 else "UINT8")
    data.set_data_from_numpy(array)
    ids = np.array([adapter.encode()] * len(array), dtype=object).reshape(-1, 1)
    adapters = grpcclient.InferInput("adapter", list(ids.shape), "BYTES")
    adapters.set_data_from_numpy(ids)
    result = client.infer(model, [data, adapters], outputs=[grpcclient.InferRequestedOutput(o) for o in outputs])
    return {o: result.as_numpy(o) for o in outputs}


def plan(seed: int, adapter: str) -> list[dict[str, Any]]:
    """60 requests: tenant, adapter or base, texts (1-4, unique) or images (1-2; 224 or 112 px; patches or not)."""
    rng = random.Random(seed)
    requests = []
    for _ in range(60):
        request: dict[str, Any] = {"headers": rng.choice([ACME, GLOBEX]), "adapter": rng.choice([None, adapter])}
        if rng.random() < 0.6:
            request["texts"] = [
                f"{uuid.uuid4().hex} {rng.choice(['cat', 'dog', 'map'])}" for _ in range(rng.randint(1, 4))
            ]
        else:
            request["images"] = rng.sample(IMAGES, rng.randint(1, 2))
            request["resolution"] = rng.choice([224, 112])
            request["patches"] = rng.random() < 0.5
        requests.append(request)
    return requests


async def send(client: httpx.AsyncClient, request: dict[str, Any], jitter: float) -> dict:
    await asyncio.sleep(jitter)  # shuffles arrival order across tenants, modalities and shapes
    if "texts" in request:
        body: dict[str, Any] = {"input": request["texts"], "normalize": False, "adapter": request["adapter"]}
        response = await client.post("/v1/embeddings", json=body, headers=request["headers"])
    else:
        body = {
            "images": [base64.b64encode(i).decode() for i in request["images"]],
            "resolution": request["resolution"],
            "return_patch_tokens": request["patches"],
            "normalize": False,
            "adapter": request["adapter"],
        }
        response = await client.post("/v1/embed/image", json=body, headers=request["headers"])
    assert response.status_code == 200, response.text
    return dict(response.json())


def expected(triton: TritonServer, state: AppState, tokenizer: Tokenizer, request: dict[str, Any]) -> dict:
    tenant = "acme" if request["headers"] is ACME else "globex"
    resolved = asyncio.run(state.resolve_adapter(tenant, request["adapter"])) if request["adapter"] else None
    if "texts" in request:
        ids, _ = tokenizer(request["texts"])
        adapter = resolved.id_for("text") if resolved else ""
        return direct(triton, "tipsv2_text", "input_ids", ids, adapter, ["text_embedding"])
    adapter = resolved.id_for("image") if resolved else ""
    pixels = np.stack([resize_uint8(decode_image(i, 40_000_000), request["resolution"]) for i in request["images"]])
    outputs = ["cls1", "cls2", "patch_tokens"] if request["patches"] else ["cls1", "cls2"]
    return direct(triton, "tipsv2_image", "pixels", pixels, adapter, outputs)


def check(response: dict, reference: dict, request: dict[str, Any]) -> None:
    if "texts" in request:
        got = np.array([d["embedding"] for d in response["data"]], dtype=np.float32)
        assert np.allclose(got, reference["text_embedding"], atol=1e-4), "a text request got rows not its own"
        return
    for i, item in enumerate(response["data"]):
        assert np.allclose(item["embedding"], reference["cls1"][i], atol=1e-4), "an image request got rows not its own"
        assert np.allclose(item["embedding_cls2"], reference["cls2"][i], atol=1e-4)
        if request["patches"]:
            patches = np.frombuffer(base64.b64decode(item["patch_tokens"]["data"]), dtype="<f2")
            assert np.allclose(patches, reference["patch_tokens"][i].ravel(), atol=2e-2)
    assert response["resolution"] == request["resolution"]


@pytest.mark.parametrize("seed", [1, 2])
def test_concurrent_requests_of_two_tenants_share_calls_and_each_gets_its_own_rows(
    triton: TritonServer,
    redis_server: RedisServer,
    tokenizer_path: Path,
    adapter_store: Path,
    seed: int,
) -> None:
    settings = batching_settings(triton, redis_server.url, tokenizer_path, adapter_store)
    name = unique_name("mix")
    with open_gateway(settings) as setup:  # the same adapter name in both tenants, with different weights
        model_id = served_model_id(setup)
        upload(setup, ACME, name, adapter_file(model_id, seed=seed))
        upload(setup, GLOBEX, name, adapter_file(model_id, seed=seed + 100))
    requests = plan(seed, name)
    app = create_app(settings)

    async def run() -> tuple[list[dict], AppState, str]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=60) as client:
                rng = random.Random(seed)
                jitters = [rng.choice([0.0, 0.0, 0.001, 0.003]) for _ in requests]
                responses = await asyncio.gather(*(send(client, r, j) for r, j in zip(requests, jitters, strict=True)))
                metrics = (await client.get("/metrics")).text
            return list(responses), app.state.tipsv2, metrics

    responses, state, metrics = asyncio.run(run())
    calls = metric_value(metrics, "tipsv2_triton_call_requests_count")
    packed = metric_value(metrics, "tipsv2_triton_call_requests_sum")
    # Requests did share calls (a repeated image can be a cache hit: it never reaches Triton).
    assert packed >= len(requests) / 2 and calls < packed / 2, (calls, packed)
    tokenizer = Tokenizer(tokenizer_path)
    for request, response in zip(requests, responses, strict=True):
        check(response, expected(triton, state, tokenizer, request), request)


def test_a_request_whose_adapter_triton_cannot_load_fails_alone(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path
) -> None:
    settings = batching_settings(triton, redis_server.url, tokenizer_path, adapter_store)
    app = create_app(settings)

    async def run() -> list[Any]:
        async with app.router.lifespan_context(app):
            backend = app.state.tipsv2.backend
            served = await backend.served_model()
            ids = np.full((1, served.text_len), 0, dtype=np.int32)
            ids[:, :3] = [[5, 6, 7]]
            adapters = [""] * 12
            adapters[5] = "acme/missing/1/0000000000000000"  # not in the store: Triton refuses it
            return list(
                await asyncio.gather(
                    *(backend.embed_text(ids + i, [a]) for i, a in enumerate(adapters)), return_exceptions=True
                )
            )

    results = asyncio.run(run())
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [5], results[5]
    assert getattr(results[5], "code", None) == "adapter_not_found"
