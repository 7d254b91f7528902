"""Small stand-in artifacts for generating repositories in unit tests (the integration tests use real exports)."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from service.triton.repository import RepositoryOptions, write_repository
from training.contracts.served import ServedModel
from training.export.artifacts import Artifacts

SERVED = ServedModel(
    model_name="tipsv2-tiny",
    model_id="0123456789abcdef",
    embed_dim=64,
    text_len=64,
    patch_size=14,
    resolutions=(224, 112),
    temperature=0.01,
)


def identity_onnx(path: Path, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> Path:
    """A valid ONNX graph with the given input and output names (each output copies the first input)."""
    values = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", None]) for n in inputs]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", None]) for n in outputs]
    nodes = [helper.make_node("Identity", [inputs[0]], [n]) for n in outputs]
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", values, outs)), str(path))
    return path


def artifacts(tmp: Path) -> Artifacts:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "text.safetensors").write_bytes(b"text-embed-weights")
    (tmp / "image.safetensors").write_bytes(b"image-embed-weights")
    towers = {}
    for tower in ("text", "image"):
        folder = tmp / f"{tower}_tower"
        folder.mkdir(exist_ok=True)
        (folder / "tower.safetensors").write_bytes(b"weights")
        (folder / "tower.json").write_text("{}")
        towers[tower] = folder
    return Artifacts(
        text_embed=tmp / "text.safetensors",
        image_embed=tmp / "image.safetensors",
        text_trunk_onnx=identity_onnx(tmp / "text.onnx", ("embeddings", "token_mask"), ("text_embedding",)),
        image_trunk_onnx=identity_onnx(
            tmp / "image.onnx", ("tokens",), ("cls1", "cls2", "patch_tokens", "dense_tokens")
        ),
        text_trunk_torch=towers["text"],
        image_trunk_torch=towers["image"],
    )


def repository(tmp: Path, **options: object) -> Path:
    name = "-".join(f"{k}={v}" for k, v in sorted(options.items())) or "default"
    return write_repository(tmp / name, SERVED, artifacts(tmp / "artifacts"), RepositoryOptions(**options))  # type: ignore[arg-type]
