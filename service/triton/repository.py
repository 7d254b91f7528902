"""Generates the Triton model repository. Whatever the flavour, the gateway sees the same two models and tensors:

    tipsv2_text   input_ids INT32 [L], adapter BYTES [1]        -> text_embedding
    tipsv2_image  pixels UINT8 [S, S, 3], adapter BYTES [1]     -> cls1, cls2, patch_tokens, dense_tokens

How they are built depends on what runs the trunk:
- `local` flavour, runtime `torch` (cpu or cuda): each is ONE Python-backend model doing the whole forward in one
  `execute` (`models/fused.py`: embedding layer, device-resident adapter bank, the model library's torch tower,
  only the requested outputs). No tensor crosses between processes on the way, no ensemble step runs.
- every other combination keeps the split its trunk backend needs, as an ensemble:
      tipsv2_text  (ensemble) = tipsv2_text_embed  (python: ids -> embeddings, adapters) -> tipsv2_text_trunk
      tipsv2_image (ensemble) = tipsv2_image_embed (python: pixels -> tokens, adapters)  -> tipsv2_image_trunk
  `local` + runtime `numpy`: the trunks are Python-backend models running onnxruntime (the bundled tritonserver
  has no onnxruntime or TensorRT backend); `onnx`: Triton's onnxruntime backend (NVIDIA's container, CPU or GPU);
  `gpu`: TensorRT plans that `tipsv2 engines build` compiles from the ONNX file beside them. The runtime picks the
  embedding stages' code: numpy in host memory (torch-free, for NVIDIA's container as shipped) or torch with the
  adapter bank resident on the device.

Both shapes come from the same typed tensors and options below. The trunks never change for an adapter: adapters
live in the banks (of the embedding stages, or of the fused models), read from the adapter store.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from service.triton.config import DynamicBatching, EnsembleStep, InstanceGroup, ModelConfig, Tensor, Warmup
from training.export.artifacts import Artifacts, ServedModel, TrunkFormat, read_artifacts

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
_FUSED_SOURCES = (
    "tipsv2_stages.py",
    "tipsv2_stages_torch.py",
    "tipsv2_fused_torch.py",
    "tipsv2_metrics.py",
    "tipsv2_triton.py",
)
COMPILE_BACKENDS = ("inductor", "cudagraphs", "eager")
# The fused models' instance count on a GPU when not given: three stubs taking turns on one GPU reached 0.87x of
# direct in the ceiling probe (1: 0.61x, 2: 0.79x, 4: 0.87x; ../shared/reference/gpu_anchors.md).
GPU_FUSED_INSTANCES = 3
# Torch threads per fused stub on a GPU when not given: the stub only stages bytes and launches kernels (the probe: 2).
GPU_FUSED_THREADS = 2
MiB = 1 << 20


@dataclass(frozen=True)
class RepositoryOptions:
    flavour: Flavour = "local"
    runtime: Runtime | None = None  # Python-backend code; None: torch for `gpu` (stages beside the plans), else numpy
    device: Device | None = None  # where models run; None: cuda for `gpu`, else cpu. cuda + numpy: trunk only (onnx)
    compute_dtype: ComputeDtype = "float32"  # precision of the torch trunk (I/O stays float32)
    torch_compile: str = ""  # torch.compile mode of the torch trunk ("" = eager)
    compile_backend: str = "inductor"  # inductor (takes the mode), cudagraphs, or eager (traces only: CPU tests)
    # Batch sizes with a static compiled graph each (batches padded up to the next; the max batch is always one);
    # empty: one graph with a dynamic batch axis.
    compile_buckets: tuple[int, ...] = ()
    keep_on_device: bool = True  # cuda: tensors between ensemble steps stay on the GPU (False: through host memory)
    text_max_batch: int = 256
    image_max_batch: int = 32
    # No queue window by default: the gateway packs concurrent requests into one call itself
    # (service/gateway/inference/batching.py), so a window would only add its length to every call's latency (measured:
    # text at concurrency 1, 6.9 -> 2.2 ms p50 through the gateway; docs/benchmarks.md). Triton still batches whatever
    # is queued when an instance frees up. Clients that call Triton directly one row at a time want a window (2000).
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    # Requests a model may hold queued; beyond it Triton refuses at once ("Exceeds maximum queue size"), which the
    # gateway answers 503 + Retry-After, instead of queueing without limit. 0 = unbounded.
    max_queue_size: int = 1024
    queue_timeout_us: int = 0
    trunk_instances: int = 1
    embed_instances: int = 1
    fused_instances: int = 0  # instances of each fused model (runtime torch, local); 0: 3 on a GPU, 1 on a CPU
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
        if self.compile_backend not in COMPILE_BACKENDS or any(b < 1 for b in self.compile_buckets):
            raise ValueError(f"compile backend must be one of {', '.join(COMPILE_BACKENDS)}; buckets at least 1")
        instances = self.fused_instances or (GPU_FUSED_INSTANCES if device == "cuda" else 1)
        return replace(self, runtime=runtime, device=device, fused_instances=instances)

    @property
    def torch_trunk(self) -> bool:
        return self.flavour == "local" and self.runtime == "torch"

    @property
    def trunk_format(self) -> TrunkFormat:
        """The trunks these options serve: torch towers (the fused models) or ONNX files (every other shape)."""
        return "torch" if self.torch_trunk else "onnx"

    @property
    def stages_on_gpu(self) -> bool:
        return self.runtime == "torch" and self.device == "cuda"

    def buckets(self, max_batch: int) -> tuple[int, ...]:
        """A model's compiled batch sizes: the given ones below its max batch, and the max batch itself."""
        if not self.compile_buckets:
            return ()
        return tuple(sorted({b for b in self.compile_buckets if b < max_batch} | {max_batch}))


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
    manifest = {
        "served": asdict(served),
        "options": asdict(options),
        "server": {"python_shm_default_bytes": python_shm_bytes(served, options)},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    return out


def repository_from_artifacts(artifacts_dir: str | Path, out: str | Path, options: RepositoryOptions) -> Path:
    """An export's artifacts folder (`training.export.artifacts`) -> a complete repository in `out`."""
    served, artifacts = read_artifacts(artifacts_dir)
    return write_repository(out, served, artifacts, options)


def read_manifest(repository: str | Path) -> dict[str, dict[str, object]]:
    """The generator's record of a repository: {"served": ServedModel fields, "options": RepositoryOptions fields}."""
    path = Path(repository) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{repository} is not a generated TIPSv2 repository (no {MANIFEST})")
    manifest: dict[str, dict[str, object]] = json.loads(path.read_text())
    return manifest


def python_shm_bytes(served: ServedModel, options: RepositoryOptions) -> int:
    """Shared memory for each Python-backend stub (tritonserver's `--backend-config=python,shm-default-byte-size`):
    a full batch of inputs at the largest resolution plus its CLS or text outputs, with a quarter to spare, so that
    the hot path never grows the region (the backend's default is 1 MiB, grown 1 MiB at a time). Patch and dense
    tokens of a full batch may still grow it."""
    S, D = max(served.resolutions), served.embed_dim
    adapter_ids = 128  # bytes per row, generously: an id is `tenant/name/version/digest` plus a length prefix
    text = options.text_max_batch * (served.text_len * 4 + adapter_ids + D * 4)
    image = options.image_max_batch * (S * S * 3 + adapter_ids + 2 * D * 4)
    need = max(text, image) * 5 // 4
    return max(16 * MiB, -(-need // MiB) * MiB)


def _check_artifacts(art: Artifacts, opt: RepositoryOptions) -> None:
    if opt.torch_trunk:
        needed = {"text_trunk_torch": art.text_trunk_torch, "image_trunk_torch": art.image_trunk_torch}
    else:
        needed = {"text_trunk_onnx": art.text_trunk_onnx, "image_trunk_onnx": art.image_trunk_onnx}
    missing = [name for name, path in needed.items() if path is None]
    if missing:
        raise ValueError(f"the {opt.flavour} flavour with runtime {opt.runtime} needs {', '.join(missing)}")


@dataclass(frozen=True)
class _Io:
    """The tensors of one modality: what the gateway sends and receives, and what the ensemble steps hand over."""

    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    warm: dict[str, Tensor]  # warm-up shapes where the inputs' dims are open (an image at the default resolution)


def _io(served: ServedModel) -> tuple[_Io, _Io]:
    D, L = served.embed_dim, served.text_len
    adapter = Tensor("adapter", "TYPE_STRING", (1,))
    res = served.resolutions[0]
    text = _Io((Tensor("input_ids", "TYPE_INT32", (L,)), adapter), (Tensor("text_embedding", "TYPE_FP32", (D,)),), {})
    image_outs = (
        Tensor("cls1", "TYPE_FP32", (D,)),
        Tensor("cls2", "TYPE_FP32", (D,)),
        Tensor("patch_tokens", "TYPE_FP32", (-1, D)),
        Tensor("dense_tokens", "TYPE_FP32", (-1, D)),
    )
    pixels = Tensor("pixels", "TYPE_UINT8", (-1, -1, 3))
    image = _Io((pixels, adapter), image_outs, {"pixels": Tensor("pixels", "TYPE_UINT8", (res, res, 3))})
    return text, image


def _models(served: ServedModel, art: Artifacts, opt: RepositoryOptions) -> list[ModelFiles]:
    if opt.torch_trunk:
        return _fused_models(served, art, opt)
    return _ensemble_models(served, art, opt)


def _fused_models(served: ServedModel, art: Artifacts, opt: RepositoryOptions) -> list[ModelFiles]:
    """One Python-backend model per modality doing the whole forward (`models/fused.py`)."""
    kind: Literal["KIND_GPU", "KIND_CPU"] = "KIND_GPU" if opt.device == "cuda" else "KIND_CPU"
    threads = opt.intra_op_threads or (GPU_FUSED_THREADS if opt.device == "cuda" else 0)
    sources = {name: _MODEL_SOURCES / name for name in _FUSED_SOURCES}
    text, image = _io(served)
    models = []
    for modality, name, io, embed, tower, max_batch in (
        ("text", TEXT_MODEL, text, art.text_embed, art.text_trunk_torch, opt.text_max_batch),
        ("image", IMAGE_MODEL, image, art.image_embed, art.image_trunk_torch, opt.image_max_batch),
    ):
        assert tower is not None
        params = {
            **_served_params(served),
            "modality": modality,
            "runtime": "torch",
            "device": str(opt.device),
            "dtype": opt.compute_dtype,
            "intra_op_threads": str(threads),
            "adapter_store": opt.adapter_store,
            "adapter_capacity": str(opt.adapter_capacity),
            "base_hash": served.model_id,
            "compile": opt.torch_compile,
            "compile_backend": opt.compile_backend,
            "compile_buckets": ",".join(map(str, opt.buckets(max_batch))),
            # The Python backend's stub ignores PYTHONPATH: the model puts the project on sys.path itself.
            "project_root": str(PROJECT_ROOT),
            # Requests arrive from clients in host memory; they go to the GPU through the model's pinned staging.
            "FORCE_CPU_ONLY_INPUT_TENSORS": "yes",
        }
        config = ModelConfig(
            name=name,
            backend="python",
            max_batch_size=max_batch,
            inputs=io.inputs,
            outputs=io.outputs,
            dynamic_batching=_batching(opt),
            instance_groups=(InstanceGroup(opt.fused_instances, kind),),
            parameters=params,
            warmups=_warm(opt, {t.name: t for t in io.inputs} | io.warm),
        )
        files = {p.name: p for p in sorted(Path(tower).iterdir()) if p.is_file()}
        files |= {"model.py": _MODEL_SOURCES / "fused.py", "embed.safetensors": embed, **sources}
        models.append((config, files))
    return models


def _ensemble_models(served: ServedModel, art: Artifacts, opt: RepositoryOptions) -> list[ModelFiles]:
    """Embedding stage -> trunk, as an ensemble per modality (the numpy runtime, and the onnx and gpu flavours)."""
    D, L = served.embed_dim, served.text_len
    text, image = _io(served)
    embeddings = Tensor("embeddings", "TYPE_FP32", (L, D))
    mask = Tensor("token_mask", "TYPE_FP32", (L,))
    tokens = Tensor("tokens", "TYPE_FP32", (-1, D))
    n_tokens = 2 + (served.resolutions[0] // served.patch_size) ** 2
    embed = _embed_model(served, opt)
    trunk = _trunk_model(opt)
    return [
        embed(TEXT_EMBED, "text_embed.py", text.inputs, (embeddings, mask), art.text_embed, opt.text_max_batch),
        trunk(TEXT_TRUNK, (embeddings, mask), text.outputs, art.text_trunk_onnx, opt.text_max_batch),
        _ensemble(
            served,
            TEXT_MODEL,
            text,
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
        embed(IMAGE_EMBED, "image_embed.py", image.inputs, (tokens,), art.image_embed, opt.image_max_batch, image.warm),
        trunk(
            IMAGE_TRUNK,
            (tokens,),
            image.outputs,
            art.image_trunk_onnx,
            opt.image_max_batch,
            {"tokens": Tensor("tokens", "TYPE_FP32", (n_tokens, D))},
        ),
        _ensemble(
            served,
            IMAGE_MODEL,
            image,
            (
                EnsembleStep(IMAGE_EMBED, {"pixels": "pixels", "adapter": "adapter"}, {"tokens": "_tokens"}),
                EnsembleStep(IMAGE_TRUNK, {"tokens": "_tokens"}, {o.name: o.name for o in image.outputs}),
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
        onnx_file: Path | None,
        max_batch: int,
        warm: dict[str, Tensor] | None = None,
    ) -> ModelFiles:
        assert onnx_file is not None
        base = ModelConfig(
            name=name,
            max_batch_size=max_batch,
            inputs=inputs,
            outputs=outputs,
            dynamic_batching=_batching(opt),
            instance_groups=(InstanceGroup(opt.trunk_instances, kind),),
            warmups=_warm(opt, {t.name: t for t in inputs} | (warm or {})),
        )
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


def _ensemble(served: ServedModel, name: str, io: _Io, steps: tuple[EnsembleStep, ...], max_batch: int) -> ModelFiles:
    config = ModelConfig(
        name=name,
        platform="ensemble",
        max_batch_size=max_batch,
        inputs=io.inputs,
        outputs=io.outputs,
        parameters=_served_params(served),
        ensemble_steps=steps,
    )
    return config, {}


def _served_params(served: ServedModel) -> dict[str, str]:
    """What the gateway reads from the text and image models' configs (`service/gateway/inference/triton.py`)."""
    return {
        "model_name": served.model_name,
        "model_id": served.model_id,
        "embed_dim": str(served.embed_dim),
        "text_len": str(served.text_len),
        "patch_size": str(served.patch_size),
        "resolutions": ",".join(map(str, served.resolutions)),
        "temperature": repr(served.temperature),
    }


def _warm(opt: RepositoryOptions, inputs: dict[str, Tensor]) -> tuple[Warmup, ...]:
    return (Warmup("zeros", opt.warmup_batch, inputs),) if opt.warmup else ()
