"""Generates the Triton model repository, in three flavours with identical model names and tensors.

    tipsv2_text  (ensemble) = tipsv2_text_embed  (python: ids -> embeddings, adapters) -> tipsv2_text_trunk
    tipsv2_image (ensemble) = tipsv2_image_embed (python: pixels -> tokens, adapters)  -> tipsv2_image_trunk

Flavours differ only in the trunks: `local` runs the ONNX file in a Python-backend model through onnxruntime (the
tritonserver bundled with nvidia-pytriton has no onnxruntime backend), `onnx` uses Triton's onnxruntime backend
(NVIDIA's container), `gpu` uses TensorRT plans built from the same ONNX by `tipsv2 engines build`. The trunks never
change for an adapter: adapters live in the embedding stages' banks, read from the adapter store.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from service.triton.config import DynamicBatching, EnsembleStep, InstanceGroup, ModelConfig, Tensor, Warmup

Flavour = Literal["local", "onnx", "gpu"]
FLAVOURS: tuple[Flavour, ...] = ("local", "onnx", "gpu")
TEXT_MODEL = "tipsv2_text"
IMAGE_MODEL = "tipsv2_image"
MANIFEST = "tipsv2_manifest.json"
_MODEL_SOURCES = Path(__file__).parent / "models"


@dataclass(frozen=True)
class ServedModel:
    """What the gateway needs to know about the served model; written as ensemble parameters."""

    model_name: str  # e.g. "tipsv2-tiny"
    model_id: str  # digest of the weights: the model version in cache keys
    embed_dim: int
    text_len: int
    patch_size: int
    resolutions: tuple[int, ...]  # served image sizes (square); the first is the default
    temperature: float


@dataclass(frozen=True)
class Artifacts:
    text_trunk_onnx: Path
    image_trunk_onnx: Path
    text_embed: Path  # safetensors
    image_embed: Path  # safetensors


@dataclass(frozen=True)
class RepositoryOptions:
    flavour: Flavour = "local"
    text_max_batch: int = 256
    image_max_batch: int = 32
    max_queue_delay_us: int = 2000
    max_queue_size: int = 0  # 0 = unbounded queue
    queue_timeout_us: int = 0
    trunk_instances: int = 1
    embed_instances: int = 1
    intra_op_threads: int = 0  # onnxruntime threads per trunk instance (0 = onnxruntime's default)
    adapter_store: str = ""
    adapter_capacity: int = 256
    warmup: bool = True


def write_repository(out: str | Path, served: ServedModel, artifacts: Artifacts, options: RepositoryOptions) -> Path:
    """Writes a complete repository into `out` (replacing it) and returns its path."""
    if options.flavour not in FLAVOURS:
        raise ValueError(f"unknown flavour {options.flavour!r}; choose one of {', '.join(FLAVOURS)}")
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for config, files in _models(served, artifacts, options):
        version = out / config.name / "1"
        version.mkdir(parents=True)
        (out / config.name / "config.pbtxt").write_text(config.to_pbtxt())
        for target, source in files.items():
            shutil.copyfile(source, version / target)
    manifest = {"served": asdict(served), "options": asdict(options)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    return out


def _models(served: ServedModel, art: Artifacts, opt: RepositoryOptions) -> list[tuple[ModelConfig, dict[str, Path]]]:
    D = served.embed_dim
    ids = Tensor("input_ids", "TYPE_INT32", (served.text_len,))
    adapter = Tensor("adapter", "TYPE_STRING", (1,))
    embeddings = Tensor("embeddings", "TYPE_FP32", (served.text_len, D))
    mask = Tensor("token_mask", "TYPE_FP32", (served.text_len,))
    text_out = Tensor("text_embedding", "TYPE_FP32", (D,))
    pixels = Tensor("pixels", "TYPE_UINT8", (-1, -1, 3))
    tokens = Tensor("tokens", "TYPE_FP32", (-1, D))
    image_outs = (
        Tensor("cls1", "TYPE_FP32", (D,)),
        Tensor("cls2", "TYPE_FP32", (D,)),
        Tensor("patch_tokens", "TYPE_FP32", (-1, D)),
        Tensor("dense_tokens", "TYPE_FP32", (-1, D)),
    )
    res = served.resolutions[0]
    stage_params = {
        "adapter_store": opt.adapter_store,
        "adapter_capacity": str(opt.adapter_capacity),
        "base_hash": served.model_id,
    }
    batching = DynamicBatching(opt.max_queue_delay_us, (), opt.max_queue_size, opt.queue_timeout_us)
    sources = {
        "tipsv2_stages.py": _MODEL_SOURCES / "tipsv2_stages.py",
        "tipsv2_metrics.py": _MODEL_SOURCES / "tipsv2_metrics.py",
    }

    def embed(
        name: str,
        source: str,
        inputs: tuple[Tensor, ...],
        outputs: tuple[Tensor, ...],
        weights: Path,
        max_batch: int,
        warm: dict[str, Tensor],
    ) -> tuple[ModelConfig, dict[str, Path]]:
        config = ModelConfig(
            name=name,
            backend="python",
            max_batch_size=max_batch,
            inputs=inputs,
            outputs=outputs,
            dynamic_batching=batching,
            instance_groups=(InstanceGroup(opt.embed_instances, "KIND_CPU"),),
            parameters=stage_params,
            warmups=_warm(opt, warm),
        )
        return config, {"model.py": _MODEL_SOURCES / source, "embed.safetensors": weights, **sources}

    def trunk(
        name: str,
        inputs: tuple[Tensor, ...],
        outputs: tuple[Tensor, ...],
        onnx_file: Path,
        max_batch: int,
        warm: dict[str, Tensor],
    ) -> tuple[ModelConfig, dict[str, Path]]:
        kind: Literal["KIND_GPU", "KIND_CPU"] = "KIND_GPU" if opt.flavour == "gpu" else "KIND_CPU"
        base = ModelConfig(
            name=name,
            max_batch_size=max_batch,
            inputs=inputs,
            outputs=outputs,
            dynamic_batching=batching,
            instance_groups=(InstanceGroup(opt.trunk_instances, kind),),
            warmups=_warm(opt, warm),
        )
        if opt.flavour == "local":
            params = {"intra_op_threads": str(opt.intra_op_threads)}
            files = {"model.py": _MODEL_SOURCES / "onnx_trunk.py", "model.onnx": onnx_file}
            return replace(base, backend="python", parameters=params), files
        if opt.flavour == "onnx":
            onnx = replace(
                base, platform="onnxruntime_onnx", backend="onnxruntime", default_model_filename="model.onnx"
            )
            return onnx, {"model.onnx": onnx_file}
        # gpu: the plan is built next to the ONNX on the GPU node by `tipsv2 engines build`
        plan = replace(base, platform="tensorrt_plan", backend="tensorrt", default_model_filename="model.plan")
        return plan, {"model.onnx": onnx_file}

    def ensemble(
        name: str,
        inputs: tuple[Tensor, ...],
        outputs: tuple[Tensor, ...],
        steps: tuple[EnsembleStep, ...],
        max_batch: int,
    ) -> tuple[ModelConfig, dict[str, Path]]:
        params = {
            "model_name": served.model_name,
            "model_id": served.model_id,
            "embed_dim": str(D),
            "text_len": str(served.text_len),
            "patch_size": str(served.patch_size),
            "resolutions": ",".join(map(str, served.resolutions)),
            "temperature": repr(served.temperature),
        }
        return ModelConfig(
            name=name,
            platform="ensemble",
            max_batch_size=max_batch,
            inputs=inputs,
            outputs=outputs,
            parameters=params,
            ensemble_steps=steps,
        ), {}

    image_pixels_warm = Tensor("pixels", "TYPE_UINT8", (res, res, 3))
    n_tokens = 2 + (res // served.patch_size) ** 2
    return [
        embed(
            "tipsv2_text_embed",
            "text_embed.py",
            (ids, adapter),
            (embeddings, mask),
            art.text_embed,
            opt.text_max_batch,
            {"input_ids": ids, "adapter": adapter},
        ),
        trunk(
            "tipsv2_text_trunk",
            (embeddings, mask),
            (text_out,),
            art.text_trunk_onnx,
            opt.text_max_batch,
            {"embeddings": embeddings, "token_mask": mask},
        ),
        ensemble(
            TEXT_MODEL,
            (ids, adapter),
            (text_out,),
            (
                EnsembleStep(
                    "tipsv2_text_embed",
                    {"input_ids": "input_ids", "adapter": "adapter"},
                    {"embeddings": "_embeddings", "token_mask": "_token_mask"},
                ),
                EnsembleStep(
                    "tipsv2_text_trunk",
                    {"embeddings": "_embeddings", "token_mask": "_token_mask"},
                    {"text_embedding": "text_embedding"},
                ),
            ),
            opt.text_max_batch,
        ),
        embed(
            "tipsv2_image_embed",
            "image_embed.py",
            (pixels, adapter),
            (tokens,),
            art.image_embed,
            opt.image_max_batch,
            {"pixels": image_pixels_warm, "adapter": adapter},
        ),
        trunk(
            "tipsv2_image_trunk",
            (tokens,),
            image_outs,
            art.image_trunk_onnx,
            opt.image_max_batch,
            {"tokens": Tensor("tokens", "TYPE_FP32", (n_tokens, D))},
        ),
        ensemble(
            IMAGE_MODEL,
            (pixels, adapter),
            image_outs,
            (
                EnsembleStep("tipsv2_image_embed", {"pixels": "pixels", "adapter": "adapter"}, {"tokens": "_tokens"}),
                EnsembleStep("tipsv2_image_trunk", {"tokens": "_tokens"}, {o.name: o.name for o in image_outs}),
            ),
            opt.image_max_batch,
        ),
    ]


def _warm(opt: RepositoryOptions, inputs: dict[str, Tensor]) -> tuple[Warmup, ...]:
    return (Warmup("zeros", 1, inputs),) if opt.warmup else ()
