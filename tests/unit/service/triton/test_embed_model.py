"""The ensembles' embedding-stage model (`models/embed.py`) as the generator writes it into a repository, run
in-process with a stand-in for Triton's `triton_python_backend_utils`: the numpy and the torch runtime give the same
tensors for both modalities, apply a request's adapter to its rows only, and keep a bad request's error to itself.

The real server runs the numpy runtime in the integration tests; the torch runtime's embedding stages serve the gpu
flavour beside TensorRT, which no machine here has, so this is where its model file runs."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from google.protobuf.json_format import MessageToDict

from service.triton.config import parse_pbtxt
from service.triton.repository import RepositoryOptions, write_repository
from tests.unit.service.triton.repo_fixtures import SERVED, identity_onnx
from training.adalink.samples import random_adapter
from training.contracts.adapter_store import write_version
from training.export.artifacts import Artifacts
from training.export.embed_stage import image_embed_arrays, save_arrays, text_embed_arrays


@dataclass
class FakeTensor:
    name: str
    array: Any

    def as_numpy(self) -> np.ndarray:
        return np.asarray(self.array)

    def to_dlpack(self) -> object:
        return torch.utils.dlpack.to_dlpack(torch.from_numpy(np.ascontiguousarray(self.array)))

    @staticmethod
    def from_dlpack(name: str, capsule: object) -> FakeTensor:
        return FakeTensor(name, torch.utils.dlpack.from_dlpack(capsule).numpy().copy())


@dataclass
class FakeRequest:
    inputs: dict[str, FakeTensor]
    wanted: list[str] = field(default_factory=list)

    def requested_output_names(self) -> list[str]:
        return self.wanted


class FakeMetric:
    def __init__(self, **_: object) -> None:
        pass

    def increment(self, value: float) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, value: float) -> None:
        pass


def fake_pb_utils() -> ModuleType:
    module = ModuleType("triton_python_backend_utils")
    family = SimpleNamespace(COUNTER="counter", GAUGE="gauge", HISTOGRAM="histogram")
    module.MetricFamily = type(  # type: ignore[attr-defined]
        "MetricFamily", (), {**vars(family), "__init__": lambda self, **_: None, "Metric": FakeMetric}
    )
    module.Tensor = FakeTensor  # type: ignore[attr-defined]
    module.InferenceResponse = lambda output_tensors=None, error=None: SimpleNamespace(  # type: ignore[attr-defined]
        outputs={t.name: np.asarray(t.array) for t in output_tensors or []}, error=error
    )
    module.TritonError = lambda message: message  # type: ignore[attr-defined]
    module.get_input_tensor_by_name = lambda request, name: request.inputs[name]  # type: ignore[attr-defined]
    return module


@pytest.fixture
def isolated_modules() -> Iterator[None]:
    """Model files import their folder's modules by flat names: each test gets them fresh, and leaves none."""
    modules, path = dict(sys.modules), list(sys.path)
    sys.modules["triton_python_backend_utils"] = fake_pb_utils()
    yield
    sys.modules.clear()
    sys.modules.update(modules)
    sys.path[:] = path


@pytest.fixture(scope="module")
def store_and_repositories(tiny_model, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Path]]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("embed-model")
    grids = [r // SERVED.patch_size for r in SERVED.resolutions]
    artifacts = Artifacts(
        text_embed=save_arrays(text_embed_arrays(tiny_model), tmp / "text.safetensors"),
        image_embed=save_arrays(image_embed_arrays(tiny_model, grids), tmp / "image.safetensors"),
        text_trunk_onnx=identity_onnx(tmp / "text.onnx", ("embeddings", "token_mask"), ("text_embedding",)),
        image_trunk_onnx=identity_onnx(tmp / "image.onnx", ("tokens",), ("cls1", "cls2", "patch_tokens")),
    )
    store = tmp / "store"
    adapter = write_version(store, "acme", "shop", 1, random_adapter(SERVED.model_id, 64, seed=3, up_scale=2.0))
    runtimes = {"numpy": {"flavour": "local"}, "torch": {"flavour": "onnx", "runtime": "torch", "device": "cpu"}}
    repositories = {
        runtime: write_repository(
            tmp / runtime,
            SERVED,
            artifacts,
            RepositoryOptions(adapter_store=str(store), **options),  # type: ignore[arg-type]
        )
        for runtime, options in runtimes.items()
    }
    return str(adapter), repositories


def load_model(repository: Path, name: str) -> Any:
    folder = repository / name
    spec = importlib.util.spec_from_file_location(f"model_{name}", folder / "1" / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = MessageToDict(parse_pbtxt((folder / "config.pbtxt").read_text()), preserving_proto_field_name=True)
    model = module.TritonPythonModel()
    model.initialize(
        {"model_config": json.dumps(config), "model_name": name, "model_repository": str(folder), "model_version": "1"}
    )
    return model


def adapters(*ids: str) -> FakeTensor:
    return FakeTensor("adapter", np.array([[i.encode()] for i in ids], dtype=object))


def run(model: Any, data_name: str, rows: np.ndarray, adapter_id: str) -> list[SimpleNamespace]:
    """Three requests: the base model, an unknown adapter (its error must stay its own), the adapter."""
    requests = [
        FakeRequest({data_name: FakeTensor(data_name, rows), "adapter": adapters(*[""] * len(rows))}),
        FakeRequest({data_name: FakeTensor(data_name, rows[:1]), "adapter": adapters("acme/nope/1/0000000000000000")}),
        FakeRequest({data_name: FakeTensor(data_name, rows), "adapter": adapters(*[adapter_id] * len(rows))}),
    ]
    responses: list[SimpleNamespace] = model.execute(requests)
    return responses


@pytest.mark.parametrize(
    ("modality", "data_name", "outputs"),
    [("text", "input_ids", ("embeddings", "token_mask")), ("image", "pixels", ("tokens",))],
)
def test_both_runtimes_embed_alike_and_adapt_only_the_adapters_rows(
    store_and_repositories, isolated_modules, modality: str, data_name: str, outputs: tuple[str, ...]
) -> None:  # type: ignore[no-untyped-def]
    adapter_id, repositories = store_and_repositories
    rng = np.random.default_rng(0)
    if modality == "text":
        rows = np.zeros((2, SERVED.text_len), np.int32)
        rows[:, :5] = rng.integers(1, 100, (2, 5))
    else:
        rows = rng.integers(0, 255, (2, 112, 112, 3), dtype=np.uint8)
    results = {}
    for runtime, repository in repositories.items():
        base, unknown, adapted = run(load_model(repository, f"tipsv2_{modality}_embed"), data_name, rows, adapter_id)
        assert base.error is None and adapted.error is None, (runtime, base.error, adapted.error)
        assert "unknown adapter" in unknown.error and not unknown.outputs
        assert set(base.outputs) == set(outputs)
        first = outputs[0]
        assert not np.allclose(base.outputs[first], adapted.outputs[first], atol=1e-3)  # the adapter moved its rows
        results[runtime] = (base.outputs, adapted.outputs)
    for got, want in zip(results["torch"], results["numpy"], strict=True):
        for name in outputs:
            np.testing.assert_allclose(got[name], want[name], atol=2e-5, err_msg=name)
