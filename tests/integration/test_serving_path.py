"""The serving path against the real tritonserver, in both Python-backend runtimes of the `local` flavour:
`numpy` (ensembles: numpy stages + onnxruntime trunks) and `torch` (one fused model per modality: embedding layer,
device-resident adapter bank and torch trunk in one `execute`, on CPU here). References are computed in plain
PyTorch from the model library: model.{text,visual}.embed -> x + up(act(down x)) -> trunk."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from service.gateway.core.config import TritonSettings
from service.gateway.core.metrics import Metrics
from service.gateway.inference.triton import TritonBackend
from service.tools.local.tritonserver import TritonServer
from service.triton.build import build_repository
from service.triton.repository import RepositoryOptions
from tests.conftest import TINY, start_triton
from training.adalink.module import ACTIVATIONS as ACTIVATIONS_TORCH
from training.adalink.samples import random_part, store_adapter
from training.contracts.activations import NAMES as ACTIVATIONS
from training.contracts.served import IMAGE_MODEL, TEXT_MODEL

pytestmark = pytest.mark.integration

TENANT = "serving-path"
TORCH_ACT = ACTIVATIONS_TORCH  # what training's AdaLink module computes: the reference
IMAGE_OUTPUTS = ("cls1", "cls2", "patch_tokens", "dense_tokens")
ENSEMBLE_MODELS = ("tipsv2_text_embed", "tipsv2_text_trunk", "tipsv2_image_embed", "tipsv2_image_trunk")
Adapter = dict[str, tuple[np.ndarray, np.ndarray] | str]  # modality -> (down, up), "activation" -> name


@pytest.fixture(scope="module")
def torch_triton(tiny_weights: Path, build_dir: Path, adapter_store: Path) -> Iterator[TritonServer]:
    options = RepositoryOptions(
        runtime="torch",
        adapter_store=str(adapter_store),
        adapter_capacity=12,
        max_queue_delay_us=5000,
        intra_op_threads=1,
    )
    repository = build_repository(tiny_weights, TINY, build_dir / "repository_torch", options, (224, 112))
    server = start_triton(repository, build_dir / "triton_torch")
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["numpy", "torch"])
def served(request: pytest.FixtureRequest, triton: TritonServer) -> TritonServer:
    return triton if request.param == "numpy" else request.getfixturevalue("torch_triton")


def client(server: TritonServer) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")


def model_id(server: TritonServer) -> str:
    config = client(server).get_model_config(TEXT_MODEL, as_json=True)["config"]
    return str(config["parameters"]["model_id"]["string_value"])


def new_adapter(
    store: Path, base_hash: str, name: str, version: int, seed: int, rank: int, activation: str
) -> tuple[str, Adapter]:
    rng = np.random.default_rng(seed)
    parts = {
        "text": random_part(rng, 64, rank, down_scale=0.5 / 64**0.5, up_scale=0.5),
        "image": random_part(rng, 64, rank, down_scale=0.5 / 64**0.5, up_scale=0.5),
    }
    adapter_id = store_adapter(store, TENANT, name, version, parts, base_hash, activation=activation)
    return adapter_id, {**parts, "activation": activation}


@pytest.fixture(scope="module")
def nine_adapters(adapter_store: Path, triton: TritonServer) -> dict[str, Adapter]:
    base_hash = model_id(triton)
    ranks = (1, 2, 4, 8, 16, 3, 5, 7, 12)
    made = [
        new_adapter(adapter_store, base_hash, f"mix{i}", 1, 100 + i, rank, ACTIVATIONS[i % 4])
        for i, rank in enumerate(ranks)
    ]
    return dict(made)


# -- requests and references -----------------------------------------------------------------------------------


def adapter_input(adapters: list[str]) -> grpcclient.InferInput:
    array = np.array([a.encode() for a in adapters], dtype=object).reshape(-1, 1)
    tensor = grpcclient.InferInput("adapter", list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array)
    return tensor


def infer_text(server: TritonServer, ids: np.ndarray, adapters: list[str]) -> np.ndarray:
    tensor = grpcclient.InferInput("input_ids", list(ids.shape), "INT32")
    tensor.set_data_from_numpy(ids)
    result = client(server).infer(TEXT_MODEL, [tensor, adapter_input(adapters)])
    return np.asarray(result.as_numpy("text_embedding"))


def infer_image(server: TritonServer, pixels: np.ndarray, adapters: list[str]) -> dict[str, np.ndarray]:
    tensor = grpcclient.InferInput("pixels", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels)
    outputs = [grpcclient.InferRequestedOutput(name) for name in IMAGE_OUTPUTS]
    result = client(server).infer(IMAGE_MODEL, [tensor, adapter_input(adapters)], outputs=outputs)
    return {name: np.asarray(result.as_numpy(name)) for name in IMAGE_OUTPUTS}


def adapt(x: torch.Tensor, rows: list[Adapter | None], modality: str) -> torch.Tensor:
    out = []
    for row, adapter in zip(x, rows, strict=True):
        if adapter is None:
            out.append(row)
            continue
        down, up = (torch.from_numpy(a) for a in adapter[modality])
        out.append(row + TORCH_ACT[str(adapter["activation"])](row @ down.T) @ up.T)
    return torch.stack(out)


def torch_text(model, ids: np.ndarray, rows: list[Adapter | None]) -> np.ndarray:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        ids_t = torch.from_numpy(ids).long()
        x = adapt(model.text.embed(ids_t), rows, "text")
        return model.text.trunk(x, model.text.token_mask(ids_t)).numpy()


def torch_image(model, pixels: np.ndarray, rows: list[Adapter | None]) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        x = adapt(model.visual.embed(torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255), rows, "image")
        out, dense = model.visual.trunk_with_dense(x)
    p = model.visual.num_prefix_tokens
    return {"cls1": out[:, 0], "cls2": out[:, 1], "patch_tokens": out[:, p:], "dense_tokens": dense[:, p:]}  # type: ignore[dict-item]


def max_diff(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> float:
    """Over the outputs `got` holds (a request may ask for some only)."""
    return max(float(np.abs(got[k] - np.asarray(want[k])).max()) for k in got)


def token_ids(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = np.zeros((rows, 64), np.int32)
    for i in range(rows):
        n = int(rng.integers(1, 64))
        ids[i, :n] = rng.integers(2, 1000, n)
    return ids


def pixels(rows: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (rows, size, size, 3), dtype=np.uint8)


def served_models(server: TritonServer) -> set[str]:
    """The numpy runtime serves two ensembles of two steps each, the torch runtime two fused models."""
    return set(repository_index(server))


def bank_model(server: TritonServer, modality: str) -> str:
    """The model holding a modality's adapter bank: its embedding stage, or its fused model."""
    stage = f"tipsv2_{modality}_embed"
    return stage if stage in served_models(server) else f"tipsv2_{modality}"


def load_counts(server: TritonServer) -> dict[str, int]:
    """How often Triton has loaded each model since it started, from its own log."""
    log = server.log_path.read_text(errors="replace")
    return {m: len(re.findall(rf"successfully loaded '{m}'", log)) for m in served_models(server)}


def repository_index(server: TritonServer) -> dict[str, tuple[str, str]]:
    models = client(server).get_model_repository_index(as_json=True)["models"]
    return {m["name"]: (m.get("version", ""), m.get("state", "")) for m in models}


def stats(server: TritonServer, model: str) -> tuple[int, int]:
    s = client(server).get_inference_statistics(model, as_json=True)["model_stats"][0]
    return int(s.get("inference_count", 0)), int(s.get("execution_count", 0))


def scrape(server: TritonServer) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def metric(text: str, name: str, model: str) -> float:
    pattern = rf'^{re.escape(name)}{{[^}}]*model="{model}"[^}}]*}} ([0-9.e+-]+)$'
    values = [float(v) for v in re.findall(pattern, text, flags=re.MULTILINE)]
    assert values, f"{name} for {model} is not on Triton's metrics port"
    return sum(values)


# -- acceptance ------------------------------------------------------------------------------------------------


def test_base_outputs_equal_pytorch(served: TritonServer, tiny_model) -> None:  # type: ignore[no-untyped-def]
    ids = token_ids(3, seed=1)
    assert np.abs(infer_text(served, ids, [""] * 3) - torch_text(tiny_model, ids, [None] * 3)).max() <= 1e-4
    for size in (224, 112):
        images = pixels(2, size, seed=size)
        got = infer_image(served, images, ["", ""])
        assert max_diff(got, torch_image(tiny_model, images, [None, None])) <= 1e-4


def test_one_batch_of_nine_adapters_and_the_base_equals_pytorch(
    served: TritonServer, tiny_model, nine_adapters
) -> None:  # type: ignore[no-untyped-def]
    ids_per_row = [*nine_adapters, ""]
    rows = [*nine_adapters.values(), None]
    text = token_ids(1, seed=2).repeat(10, axis=0)  # the same text in every row: rows differ by adapter only
    got = infer_text(served, text, ids_per_row)
    assert np.abs(got - torch_text(tiny_model, text, rows)).max() <= 1e-4
    assert np.abs(got[:9] - got[9]).max(axis=1).min() > 1e-3  # every adapter moved its row away from the base

    images = pixels(1, 112, seed=3).repeat(10, axis=0)
    got_images = infer_image(served, images, ids_per_row)
    assert max_diff(got_images, torch_image(tiny_model, images, rows)) <= 1e-4
    assert np.abs(got_images["cls1"][:9] - got_images["cls1"][9]).max(axis=1).min() > 1e-3


def test_new_adapter_version_is_used_by_the_next_request_without_any_reload(
    served: TritonServer, tiny_model, adapter_store: Path
) -> None:  # type: ignore[no-untyped-def]
    base_hash = model_id(served)
    name = f"swap-{served.grpc_port}"
    v1_id, v1 = new_adapter(adapter_store, base_hash, name, 1, seed=7, rank=4, activation="relu")
    text = token_ids(2, seed=4)
    first = infer_text(served, text, [v1_id, v1_id])
    assert np.abs(first - torch_text(tiny_model, text, [v1, v1])).max() <= 1e-4
    index, loads = repository_index(served), load_counts(served)

    v2_id, v2 = new_adapter(adapter_store, base_hash, name, 2, seed=8, rank=6, activation="silu")
    second = infer_text(served, text, [v2_id, v2_id])

    assert np.abs(second - torch_text(tiny_model, text, [v2, v2])).max() <= 1e-4
    assert np.abs(second - first).max() > 1e-3
    assert repository_index(served) == index
    assert all(state == "READY" for _, state in index.values()) and {TEXT_MODEL, IMAGE_MODEL} <= set(index)
    assert set(index) in ({TEXT_MODEL, IMAGE_MODEL}, {TEXT_MODEL, IMAGE_MODEL, *ENSEMBLE_MODELS})
    assert load_counts(served) == loads and all(count >= 1 for count in loads.values())


def test_unknown_adapter_fails_its_own_request_only(served: TritonServer, nine_adapters) -> None:  # type: ignore[no-untyped-def]
    known = next(iter(nine_adapters))
    unknown = f"{TENANT}/never-uploaded/1/0123456789abcdef"
    requests = [[known], [""], [unknown], ["", unknown], [known, ""]] * 3
    text = token_ids(2, seed=5)

    def send(adapters: list[str]) -> str:
        try:
            infer_text(served, text[: len(adapters)], adapters)
            return "ok"
        except InferenceServerException as exc:
            return str(exc.message())

    with ThreadPoolExecutor(len(requests)) as pool:
        outcomes = list(pool.map(send, requests))
    for adapters, outcome in zip(requests, outcomes, strict=True):
        if unknown in adapters:
            assert "unknown adapter" in outcome and unknown in outcome
        else:
            assert outcome == "ok"


def test_concurrent_requests_are_batched_dynamically(served: TritonServer) -> None:
    steps = [m for m in ("tipsv2_text_embed", "tipsv2_text_trunk") if m in served_models(served)]
    before = {m: stats(served, m) for m in steps or [TEXT_MODEL]}
    text = token_ids(1, seed=6)
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda _: infer_text(served, text, [""]), range(96)))
    for model, (inferences, executions) in before.items():
        after_inferences, after_executions = stats(served, model)
        assert after_inferences - inferences == 96
        assert after_executions - executions < 96, f"{model} ran every request alone"


def test_adapter_bank_metrics_are_on_tritons_metrics_port(served: TritonServer, nine_adapters) -> None:  # type: ignore[no-untyped-def]
    infer_text(served, token_ids(1, seed=9), [next(iter(nine_adapters))])  # at least one load on this server
    text = scrape(served)
    for model in (bank_model(served, "text"), bank_model(served, "image")):
        loads = metric(text, "tipsv2_adapter_loads_total", model)
        assert metric(text, "tipsv2_adapter_load_duration_seconds_count", model) == loads
        assert metric(text, "tipsv2_adapter_bank_size", model) >= 0
        metric(text, "tipsv2_adapter_evictions_total", model)
        metric(text, "tipsv2_adapter_load_seconds_total", model)
    assert metric(text, "tipsv2_adapter_loads_total", bank_model(served, "text")) >= 9
    assert metric(text, "tipsv2_adapter_rows_total", bank_model(served, "text")) >= 9


def test_full_bank_evicts_least_recently_used_and_counts_it(torch_triton: TritonServer, adapter_store: Path) -> None:
    base_hash = model_id(torch_triton)
    ids = [new_adapter(adapter_store, base_hash, f"evict{i}", 1, 200 + i, 2, "identity")[0] for i in range(14)]
    text = token_ids(1, seed=10)
    before = scrape(torch_triton)
    for adapter_id in ids:  # 14 adapters through a bank of 12
        infer_text(torch_triton, text, [adapter_id])
    after = scrape(torch_triton)
    evicted = metric(after, "tipsv2_adapter_evictions_total", TEXT_MODEL) - metric(
        before, "tipsv2_adapter_evictions_total", TEXT_MODEL
    )
    assert evicted >= 2
    assert metric(after, "tipsv2_adapter_bank_size", TEXT_MODEL) == 12
    infer_text(torch_triton, text, [ids[0]])  # evicted earlier: loaded again on use, not an error
    assert metric(scrape(torch_triton), "tipsv2_adapter_loads_total", TEXT_MODEL) > metric(
        after, "tipsv2_adapter_loads_total", TEXT_MODEL
    )


# -- the fused models: only what was asked, through what the gateway calls ------------------------------------


def output_rows(text: str, output: str) -> float:
    pattern = rf'^tipsv2_output_rows_total{{[^}}]*model="{IMAGE_MODEL}"[^}}]*output="{output}"[^}}]*}} ([0-9.e+-]+)$'
    values = re.findall(pattern, text, flags=re.MULTILINE)
    assert values, f"tipsv2_output_rows_total for {output} is not on Triton's metrics port"
    return sum(float(v) for v in values)


def gateway_embed_image(server: TritonServer, images: np.ndarray, outputs: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The call the gateway makes for an image request (service/gateway/inference/triton.py)."""

    async def call() -> dict[str, np.ndarray]:
        backend = TritonBackend(TritonSettings(url=f"127.0.0.1:{server.grpc_port}"), Metrics())
        try:
            return await backend.embed_image(images, [""] * len(images), outputs)
        finally:
            await backend.close()

    return asyncio.run(call())


def test_a_cls_request_never_runs_the_dense_pass_nor_moves_patch_tokens(torch_triton: TritonServer, tiny_model) -> None:  # type: ignore[no-untyped-def]
    images = pixels(3, 112, seed=11)
    before = scrape(torch_triton)
    got = gateway_embed_image(torch_triton, images, ("cls1",))
    after = scrape(torch_triton)
    assert list(got) == ["cls1"] and max_diff(got, torch_image(tiny_model, images, [None] * 3)) <= 1e-4
    assert metric(after, "tipsv2_dense_passes_total", IMAGE_MODEL) == metric(
        before, "tipsv2_dense_passes_total", IMAGE_MODEL
    )
    for name in ("cls2", "patch_tokens", "dense_tokens"):
        assert output_rows(after, name) == output_rows(before, name), name
    assert output_rows(after, "cls1") == output_rows(before, "cls1") + 3

    # the same counters move when the dense tokens are asked for: they are live, so the checks above can fail
    dense = gateway_embed_image(torch_triton, images, ("cls1", "dense_tokens"))
    final = scrape(torch_triton)
    assert max_diff(dense, torch_image(tiny_model, images, [None] * 3)) <= 1e-4
    assert (
        metric(final, "tipsv2_dense_passes_total", IMAGE_MODEL)
        >= metric(after, "tipsv2_dense_passes_total", IMAGE_MODEL) + 1
    )
    assert (
        metric(final, "tipsv2_dense_rows_total", IMAGE_MODEL)
        == metric(after, "tipsv2_dense_rows_total", IMAGE_MODEL) + 3
    )
    assert output_rows(final, "patch_tokens") == output_rows(before, "patch_tokens")
    assert metric(final, "tipsv2_trunk_compiled", IMAGE_MODEL) == 0  # this server's trunk runs eager


def test_concurrent_requests_batched_together_each_get_their_own_rows(torch_triton: TritonServer, tiny_model) -> None:  # type: ignore[no-untyped-def]
    """Host staging and output memory are reused from one execute to the next: every response must still hold its
    own request's rows."""
    texts = [token_ids(1 + i % 3, seed=40 + i) for i in range(24)]
    with ThreadPoolExecutor(24) as pool:
        got = list(pool.map(lambda ids: infer_text(torch_triton, ids, [""] * len(ids)), texts))
    for ids, result in zip(texts, got, strict=True):
        assert np.abs(result - torch_text(tiny_model, ids, [None] * len(ids))).max() <= 1e-4
