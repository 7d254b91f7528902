"""Generates the Triton model repository, in three flavours with identical model names and tensors.

    tipsv2_text  (ensemble) = tipsv2_text_embed  (python: ids -> embeddings, adapters) -> tipsv2_text_trunk
    tipsv2_image (ensemble) = tipsv2_image_embed (python: pixels -> tokens, adapters)  -> tipsv2_image_trunk

Flavours differ only in the trunks: `local` runs them in Python-backend models (the tritonserver bundled with
nvidia-pytriton has no onnxruntime or TensorRT backend): onnxruntime on the ONNX file with runtime `numpy`, or the
model library's torch tower with runtime `torch` (on a GPU with device `cuda`). `onnx` uses Triton's onnxruntime
backend (NVIDIA's container, CPU or GPU); `gpu` uses TensorRT plans that `tipsv2 engines build` compiles from the
ONNX file it finds next to them. The runtime also picks the embedding stages' code: numpy in host memory (torch-free,
for NVIDIA's container as shipped) or torch with the adapter bank resident on the device.

The trunks never change for an adapter: adapters live in the embedding stages' banks, read from the adapter store.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from service.triton.config import DynamicBatching, EnsembleStep, InstanceGroup, ModelConfig, Tensor, Warmup

Flavour = Literal["local", "onnx", "gpu"]
Runtime = Literal["numpy", "torch"]
Device = Literal["cpu", "cuda"]
ComputeDtype = Literal["float32", "bfloat16", "float16"]
FLAVOURS: tuple[Flavour, ...] = ("local", "onnx", "gpu")
RUNTIMES: tuple[Runtime, ...] = ("numpy", "torch")
DEVICES: tuple[Device, ...] = ("cpu", "cuda")
COMPUTE_DTYPES: tuple[ComputeDtype, ...] = ("float32", "bfloat16", "float16")
TEXT_MODEL = "tipsv2_text"
IMAGE_MODEL = "tipsv2_image"
TEXT_EMBED, TEXT_TRUNK = "tipsv2_text_embed", "tipsv2_text_trunk"
IMAGE_EMBED, IMAGE_TRUNK = "tipsv2_image_embed", "tipsv2_image_trunk"
MANIFEST = "tipsv2_manifest.json"
ONNX_FILE, PLAN_FILE = "model.onnx", "model.plan"
_MODEL_SOURCES = Path(__file__).parent / "models"
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the torch trunks import the model library from here
_SHARED_SOURCES = (
    "tipsv2_stages.py",
    "tipsv2_stages_torch.py",
    "tipsv2_embed_torch.py",
    "tipsv2_metrics.py",
    "tipsv2_triton.py",
)


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
    """Files the generator copies in; which trunk files are needed depends on the flavour and runtime."""

    text_embed: Path  # safetensors
    image_embed: Path  # safetensors
    text_trunk_onnx: Path | None = None
    image_trunk_onnx: Path | None = None
    text_trunk_torch: Path | None = None  # folder written by training.export.torch_trunk.save_torch_trunk
    image_trunk_torch: Path | None = None


@dataclass(frozen=True)
class RepositoryOptions:
    flavour: Flavour = "local"
    runtime: Runtime | None = None  # Python-backend code; None: torch for `gpu` (stages beside the plans), else numpy
    device: Device | None = None  # where models run; None: cuda for `gpu`, else cpu. cuda + numpy: trunk only (onnx)
    compute_dtype: ComputeDtype = "float32"  # precision of the torch trunk (I/O stays float32)
    torch_compile: str = ""  # torch.compile mode of the torch trunk ("" = eager)
    keep_on_device: bool = True  # cuda: tensors between ensemble steps stay on the GPU (False: through host memory)
    text_max_batch: int = 256
    image_max_batch: int = 32
    # No queue window by default: the gateway packs concurrent requests into one call itself
    # (service/inference/batching.py), so a window would only add its length to every call's latency (measured: text
    # at concurrency 1, 6.9 -> 2.2 ms p50 through the gateway; docs/benchmarks.md). Triton still batches whatever is
    # queued when an instance frees up. Clients that call Triton directly one row at a time want a window (2000).
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    # Requests a model may hold queued; beyond it Triton refuses at once ("Exceeds maximum queue size"), which the
    # gateway answers 503 + Retry-After, instead of queueing without limit. 0 = unbounded.
    max_queue_size: int = 1024
    queue_timeout_us: int = 0
    trunk_instances: int = 1
    embed_instances: int = 1
    intra_op_threads: int = 0  # CPU threads per model instance, onnxruntime or torch (0 = the library's default)
    adapter_store: str = ""
    adapter_capacity: int = 256
    warmup: bool = True
    warmup_batch: int = 1

    def resolved(self) -> RepositoryOptions:
        """The options with defaults filled in and combinations checked; raises ValueError on a bad one."""
        if self.flavour not in FLAVOURS:
            raise ValueError(f"unknown flavour {self.flavour!r}; choose one of {', '.join(FLAVOURS)}")
        gpu = self.flavour == "gpu"
        runtime = self.runtime or ("torch" if gpu else "numpy")
        device = self.device or ("cuda" if gpu else "cpu")
        if runtime not in RUNTIMES or device not in DEVICES or self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"unknown runtime {runtime!r}, device {device!r} or compute dtype {self.compute_dtype!r}")
        if gpu and device != "cuda":
            raise ValueError("the gpu flavour runs TensorRT plans: its device is cuda")
        if device == "cuda" and runtime == "numpy" and self.flavour == "local":
            raise ValueError("runtime numpy runs on the CPU; serve the local flavour on a GPU with runtime torch")
        if min(self.text_max_batch, self.image_max_batch, self.trunk_instances, self.embed_instances) < 1:
            raise ValueError("batch sizes and instance counts must be at least 1")
        if not 1 <= self.warmup_batch <= min(self.text_max_batch, self.image_max_batch):
            raise ValueError("warmup_batch must lie in [1, the smaller max batch size]")
        return replace(self, runtime=runtime, device=device)

    @property
    def torch_trunk(self) -> bool:
        return self.flavour == "local" and self.runtime == "torch"

    @property
    def stages_on_gpu(self) -> bool:
        return self.runtime == "torch" and self.device == "cuda"


ModelFiles = tuple[ModelConfig, dict[str, Path]]


def write_repository(out: str | Path, served: ServedModel, artifacts: Artifacts, options: RepositoryOptions) -> Path:
    """Writes a complete repository into `out` (replacing it) and returns its path."""
    options = options.resolved()
    _check_artifacts(artifacts, options)
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


def read_manifest(repository: str | Path) -> dict[str, dict[str, object]]:
    """The generator's record of a repository: {"served": ServedModel fields, "options": RepositoryOptions fields}."""
    path = Path(repository) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{repository} is not a generated TIPSv2 repository (no {MANIFEST})")
    manifest: dict[str, dict[str, object]] = json.loads(path.read_text())
    return manifest


def _check_artifacts(art: Artifacts, opt: RepositoryOptions) -> None:
    if opt.torch_trunk:
        needed = {"text_trunk_torch": art.text_trunk_torch, "image_trunk_torch": art.image_trunk_torch}
    else:
        needed = {"text_trunk_onnx": art.text_trunk_onnx, "image_trunk_onnx": art.image_trunk_onnx}
    missing = [name for name, path in needed.items() if path is None]
    if missing:
        raise ValueError(f"the {opt.flavour} flavour with runtime {opt.runtime} needs {', '.join(missing)}")


def _models(served: ServedModel, art: Artifacts, opt: RepositoryOptions) -> list[ModelFiles]:
    D, L = served.embed_dim, served.text_len
    ids = Tensor("input_ids", "TYPE_INT32", (L,))
    adapter = Tensor("adapter", "TYPE_STRING", (1,))
    embeddings = Tensor("embeddings", "TYPE_FP32", (L, D))
    mask = Tensor("token_mask", "TYPE_FP32", (L,))
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
    n_tokens = 2 + (res // served.patch_size) ** 2
    embed = _embed_model(served, opt)
    trunk = _trunk_model(opt)
    return [
        embed(TEXT_EMBED, "text_embed.py", (ids, adapter), (embeddings, mask), art.text_embed, opt.text_max_batch),
        trunk(
            TEXT_TRUNK,
            (embeddings, mask),
            (text_out,),
            (art.text_trunk_onnx, art.text_trunk_torch),
            opt.text_max_batch,
        ),
        _ensemble(
            served,
            TEXT_MODEL,
            (ids, adapter),
            (text_out,),
            (
                EnsembleStep(
                    TEXT_EMBED,
                    {"input_ids": "input_ids", "adapter": "adapter"},
                    {"embeddings": "_embeddings", "token_mask": "_token_mask"},
                ),
                EnsembleStep(
                    TEXT_TRUNK,
                    {"embeddings": "_embeddings", "token_mask": "_token_mask"},
                    {"text_embedding": "text_embedding"},
                ),
            ),
            opt.text_max_batch,
        ),
        embed(
            IMAGE_EMBED,
            "image_embed.py",
            (pixels, adapter),
            (tokens,),
            art.image_embed,
            opt.image_max_batch,
            {"pixels": Tensor("pixels", "TYPE_UINT8", (res, res, 3))},
        ),
        trunk(
            IMAGE_TRUNK,
            (tokens,),
            image_outs,
            (art.image_trunk_onnx, art.image_trunk_torch),
            opt.image_max_batch,
            {"tokens": Tensor("tokens", "TYPE_FP32", (n_tokens, D))},
        ),
        _ensemble(
            served,
            IMAGE_MODEL,
            (pixels, adapter),
            image_outs,
            (
                EnsembleStep(IMAGE_EMBED, {"pixels": "pixels", "adapter": "adapter"}, {"tokens": "_tokens"}),
                EnsembleStep(IMAGE_TRUNK, {"tokens": "_tokens"}, {o.name: o.name for o in image_outs}),
            ),
            opt.image_max_batch,
        ),
    ]


def _batching(opt: RepositoryOptions) -> DynamicBatching:
    return DynamicBatching(opt.max_queue_delay_us, opt.preferred_batch_sizes, opt.max_queue_size, opt.queue_timeout_us)


def _torch_params(opt: RepositoryOptions) -> dict[str, str]:
    params = {"runtime": str(opt.runtime), "device": str(opt.device)}
    if opt.runtime == "torch" and opt.intra_op_threads:
        params["intra_op_threads"] = str(opt.intra_op_threads)
    if opt.stages_on_gpu and opt.keep_on_device:
        # Let GPU tensors from the previous step arrive as they are instead of being copied to the host first.
        params["FORCE_CPU_ONLY_INPUT_TENSORS"] = "no"
    elif opt.stages_on_gpu:
        # The fallback where GPU tensors cannot cross between the backend's processes: hand over host memory.
        params["FORCE_CPU_ONLY_INPUT_TENSORS"] = "yes"
        params["host_outputs"] = "1"
    return params


def _embed_model(served: ServedModel, opt: RepositoryOptions) -> Callable[..., ModelFiles]:
    kind: Literal["KIND_GPU", "KIND_CPU"] = "KIND_GPU" if opt.stages_on_gpu else "KIND_CPU"
    params = {
        "adapter_store": opt.adapter_store,
        "adapter_capacity": str(opt.adapter_capacity),
        "base_hash": served.model_id,
        **_torch_params(opt),
    }
    sources = {name: _MODEL_SOURCES / name for name in _SHARED_SOURCES}

    def embed(
        name: str,
        source: str,
        inputs: tuple[Tensor, ...],
        outputs: tuple[Tensor, ...],
        weights: Path,
        max_batch: int,
        warm: dict[str, Tensor] | None = None,
    ) -> ModelFiles:
        warm_inputs = {t.name: t for t in inputs} | (warm or {})
        config = ModelConfig(
            name=name,
            backend="python",
            max_batch_size=max_batch,
            inputs=inputs,
            outputs=outputs,
            dynamic_batching=_batching(opt),
            instance_groups=(InstanceGroup(opt.embed_instances, kind),),
            parameters=params,
            warmups=_warm(opt, warm_inputs),
        )
        return config, {"model.py": _MODEL_SOURCES / source, "embed.safetensors": weights, **sources}

    return embed


def _trunk_model(opt: RepositoryOptions) -> Callable[..., ModelFiles]:
    kind: Literal["KIND_GPU", "KIND_CPU"] = "KIND_GPU" if opt.device == "cuda" else "KIND_CPU"

    def trunk(
        name: str,
        inputs: tuple[Tensor, ...],
        outputs: tuple[Tensor, ...],
        files: tuple[Path | None, Path | None],
        max_batch: int,
        warm: dict[str, Tensor] | None = None,
    ) -> ModelFiles:
        onnx_file, torch_dir = files
        base = ModelConfig(
            name=name,
            max_batch_size=max_batch,
            inputs=inputs,
            outputs=outputs,
            dynamic_batching=_batching(opt),
            instance_groups=(InstanceGroup(opt.trunk_instances, kind),),
            warmups=_warm(opt, {t.name: t for t in inputs} | (warm or {})),
        )
        if opt.torch_trunk:
            assert torch_dir is not None
            params = {
                **_torch_params(opt),
                "dtype": opt.compute_dtype,
                "compile": opt.torch_compile,
                # The Python backend's stub ignores PYTHONPATH: the model puts the project on sys.path itself.
                "project_root": str(PROJECT_ROOT),
            }
            tower = {p.name: p for p in sorted(Path(torch_dir).iterdir()) if p.is_file()}
            return replace(base, backend="python", parameters=params), {
                "model.py": _MODEL_SOURCES / "torch_trunk.py",
                "tipsv2_triton.py": _MODEL_SOURCES / "tipsv2_triton.py",
                "tipsv2_stages.py": _MODEL_SOURCES / "tipsv2_stages.py",
                **tower,
            }
        assert onnx_file is not None
        if opt.flavour == "local":
            params = {"intra_op_threads": str(opt.intra_op_threads)}
            files_ = {"model.py": _MODEL_SOURCES / "onnx_trunk.py", ONNX_FILE: onnx_file}
            return replace(base, backend="python", parameters=params), files_
        if opt.flavour == "onnx":
            onnx = replace(base, platform="onnxruntime_onnx", backend="onnxruntime", default_model_filename=ONNX_FILE)
            return onnx, {ONNX_FILE: onnx_file}
        # gpu: `tipsv2 engines build` compiles model.plan from the ONNX file beside it, on the serving GPU model
        plan = replace(base, platform="tensorrt_plan", backend="tensorrt", default_model_filename=PLAN_FILE)
        return plan, {ONNX_FILE: onnx_file}

    return trunk


def _ensemble(
    served: ServedModel,
    name: str,
    inputs: tuple[Tensor, ...],
    outputs: tuple[Tensor, ...],
    steps: tuple[EnsembleStep, ...],
    max_batch: int,
) -> ModelFiles:
    params = {
        "model_name": served.model_name,
        "model_id": served.model_id,
        "embed_dim": str(served.embed_dim),
        "text_len": str(served.text_len),
        "patch_size": str(served.patch_size),
        "resolutions": ",".join(map(str, served.resolutions)),
        "temperature": repr(served.temperature),
    }
    config = ModelConfig(
        name=name,
        platform="ensemble",
        max_batch_size=max_batch,
        inputs=inputs,
        outputs=outputs,
        parameters=params,
        ensemble_steps=steps,
    )
    return config, {}


def _warm(opt: RepositoryOptions, inputs: dict[str, Tensor]) -> tuple[Warmup, ...]:
    return (Warmup("zeros", opt.warmup_batch, inputs),) if opt.warmup else ()
