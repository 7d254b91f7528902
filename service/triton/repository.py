"""Generates the Triton model repository. Whatever the flavour, the gateway sees the same two models and tensors
(`training.contracts.served`):

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
live in the banks (of the embedding stages, or of the fused models), read from the adapter store. Every Python-backend
model gets the sources it imports copied beside its `model.py`, the contracts (`training/contracts/`) as the package
`tipsv2_contracts`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import training.contracts
from service.triton.config import DType, DynamicBatching, EnsembleStep, InstanceGroup, ModelConfig, Tensor, Warmup
from training.contracts import served as contract
from training.contracts.served import ServedModel
from training.export.artifacts import Artifacts, TrunkFormat, read_artifacts

Flavour = Literal["local", "onnx", "gpu"]
Runtime = Literal["numpy", "torch"]
Device = Literal["cpu", "cuda"]
ComputeDtype = Literal["float32", "bfloat16", "float16"]
FLAVOURS: tuple[Flavour, ...] = ("local", "onnx", "gpu")
RUNTIMES: tuple[Runtime, ...] = ("numpy", "torch")
DEVICES: tuple[Device, ...] = ("cpu", "cuda")
COMPUTE_DTYPES: tuple[ComputeDtype, ...] = ("float32", "bfloat16", "float16")
TEXT_EMBED, TEXT_TRUNK = "tipsv2_text_embed", "tipsv2_text_trunk"
IMAGE_EMBED, IMAGE_TRUNK = "tipsv2_image_embed", "tipsv2_image_trunk"
STEP_MODELS = {"text": (TEXT_EMBED, TEXT_TRUNK), "image": (IMAGE_EMBED, IMAGE_TRUNK)}  # the ensembles' two steps
MANIFEST = "tipsv2_manifest.json"
ONNX_FILE, PLAN_FILE = "model.onnx", "model.plan"
_MODEL_SOURCES = Path(__file__).parent / "models"
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the torch trunks import the model library from here
_CONTRACTS = Path(training.contracts.__file__).parent
_CONTRACTS_PACKAGE = "tipsv2_contracts"  # the contracts' name inside a model folder
# What each kind of Python-backend model imports besides its model.py, the contracts aside.
_STAGE_SOURCES = (
    "tipsv2_stages.py",
    "tipsv2_stages_torch.py",
    "tipsv2_metrics.py",
    "tipsv2_triton.py",
    "tipsv2_batch.py",
)
_EMBED_SOURCES = (*_STAGE_SOURCES, "tipsv2_embed_torch.py")
_FUSED_SOURCES = (*_STAGE_SOURCES, "tipsv2_fused_torch.py")
_TRUNK_SOURCES = ("tipsv2_batch.py",)
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

    def max_batch(self, modality: str) -> int:
        return self.text_max_batch if modality == "text" else self.image_max_batch

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
            (version / target).parent.mkdir(parents=True, exist_ok=True)
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
class _Modality:
    """Everything the models of one modality are built from."""

    name: str  # "text" | "image"
    tensors: contract.ModelTensors
    embed_model: str  # the ensemble's step names
    trunk_model: str
    embed_weights: Path
    trunk_onnx: Path | None
    trunk_torch: Path | None
    max_batch: int
    warm: dict[str, Tensor]  # warm-up shapes where the inputs' dims are open (an image at the default resolution)
    trunk_warm: dict[str, Tensor]

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        return tuple(_tensor(t) for t in self.tensors.inputs)

    @property
    def outputs(self) -> tuple[Tensor, ...]:
        return tuple(_tensor(t) for t in self.tensors.outputs)

    @property
    def trunk_inputs(self) -> tuple[Tensor, ...]:
        return tuple(_tensor(t) for t in self.tensors.trunk_inputs)


# The contracts' Triton dtypes as config.pbtxt spells them (`BYTES` is `TYPE_STRING` there).
_PBTXT_DTYPES: dict[str, DType] = {
    "INT32": "TYPE_INT32",
    "UINT8": "TYPE_UINT8",
    "FP32": "TYPE_FP32",
    "BYTES": "TYPE_STRING",
}


def _tensor(t: contract.Tensor) -> Tensor:
    """A contract tensor as config.pbtxt declares it."""
    return Tensor(t.name, _PBTXT_DTYPES[t.dtype], t.dims)


def _modalities(served: ServedModel, art: Artifacts, opt: RepositoryOptions) -> list[_Modality]:
    tensors = contract.model_tensors(served.embed_dim, served.text_len)
    S, D = served.default_resolution, served.embed_dim
    n_tokens = 2 + (S // served.patch_size) ** 2
    warm = {"text": {}, "image": {"pixels": Tensor("pixels", "TYPE_UINT8", (S, S, 3))}}
    trunk_warm = {"text": {}, "image": {"tokens": Tensor("tokens", "TYPE_FP32", (n_tokens, D))}}
    return [
        _Modality(
            name=name,
            tensors=tensors[name],
            embed_model=STEP_MODELS[name][0],
            trunk_model=STEP_MODELS[name][1],
            embed_weights=art.embed(name),
            trunk_onnx=art.trunk_onnx(name),
            trunk_torch=art.trunk_torch(name),
            max_batch=opt.max_batch(name),
            warm=warm[name],
            trunk_warm=trunk_warm[name],
        )
        for name in ("text", "image")
    ]


def _models(served: ServedModel, art: Artifacts, opt: RepositoryOptions) -> list[ModelFiles]:
    models = []
    for modality in _modalities(served, art, opt):
        if opt.torch_trunk:
            models.append(_fused_model(modality, served=served, opt=opt))
        else:
            models.append(_embed_model(modality, served=served, opt=opt))
            models.append(_trunk_model(modality, opt=opt))
            models.append(_ensemble(modality, served=served))
    return models


def _sources(names: tuple[str, ...], contracts: bool = True) -> dict[str, Path]:
    """Model sources to copy beside a model.py, and the contracts as a package."""
    files = {name: _MODEL_SOURCES / name for name in names}
    if contracts:
        files |= {f"{_CONTRACTS_PACKAGE}/{p.name}": p for p in sorted(_CONTRACTS.glob("*.py"))}
    return files


def _fused_model(m: _Modality, *, served: ServedModel, opt: RepositoryOptions) -> ModelFiles:
    """One Python-backend model doing the modality's whole forward (`models/fused.py`)."""
    assert m.trunk_torch is not None
    kind: Literal["KIND_GPU", "KIND_CPU"] = "KIND_GPU" if opt.device == "cuda" else "KIND_CPU"
    threads = opt.intra_op_threads or (GPU_FUSED_THREADS if opt.device == "cuda" else 0)
    params = {
        **served.parameters(),
        "modality": m.name,
        "runtime": "torch",
        "device": str(opt.device),
        "dtype": opt.compute_dtype,
        "intra_op_threads": str(threads),
        "adapter_store": opt.adapter_store,
        "adapter_capacity": str(opt.adapter_capacity),
        "base_hash": served.model_id,
        "compile": opt.torch_compile,
        "compile_backend": opt.compile_backend,
        "compile_buckets": ",".join(map(str, opt.buckets(m.max_batch))),
        # The Python backend's stub ignores PYTHONPATH: the model puts the project on sys.path itself.
        "project_root": str(PROJECT_ROOT),
        # Requests arrive from clients in host memory; they go to the GPU through the model's pinned staging.
        "FORCE_CPU_ONLY_INPUT_TENSORS": "yes",
    }
    instances = InstanceGroup(opt.fused_instances, kind)
    config = _python_model(m, name=m.tensors.name, outputs=m.outputs, instances=instances, params=params, opt=opt)
    files = {p.name: p for p in sorted(m.trunk_torch.iterdir()) if p.is_file()}
    files |= {"model.py": _MODEL_SOURCES / "fused.py", "embed.safetensors": m.embed_weights, **_sources(_FUSED_SOURCES)}
    return config, files


def _embed_model(m: _Modality, *, served: ServedModel, opt: RepositoryOptions) -> ModelFiles:
    """The ensemble's first step: the embedding stage with the adapter bank (`models/embed.py`)."""
    kind: Literal["KIND_GPU", "KIND_CPU"] = "KIND_GPU" if opt.stages_on_gpu else "KIND_CPU"
    params = {
        "modality": m.name,
        "adapter_store": opt.adapter_store,
        "adapter_capacity": str(opt.adapter_capacity),
        "base_hash": served.model_id,
        **_torch_params(opt),
    }
    instances = InstanceGroup(opt.embed_instances, kind)
    config = _python_model(m, name=m.embed_model, outputs=m.trunk_inputs, instances=instances, params=params, opt=opt)
    files = {"model.py": _MODEL_SOURCES / "embed.py", "embed.safetensors": m.embed_weights, **_sources(_EMBED_SOURCES)}
    return config, files


def _python_model(
    m: _Modality,
    *,
    name: str,
    outputs: tuple[Tensor, ...],
    instances: InstanceGroup,
    params: dict[str, str],
    opt: RepositoryOptions,
) -> ModelConfig:
    """A Python-backend model taking the modality's served inputs (a fused model, or an embedding stage)."""
    return ModelConfig(
        name=name,
        backend="python",
        max_batch_size=m.max_batch,
        inputs=m.inputs,
        outputs=outputs,
        dynamic_batching=_batching(opt),
        instance_groups=(instances,),
        parameters=params,
        warmups=_warm(opt, {t.name: t for t in m.inputs} | m.warm),
    )


def _trunk_model(m: _Modality, *, opt: RepositoryOptions) -> ModelFiles:
    """The ensemble's second step: the trunk, in the backend the flavour runs it with."""
    assert m.trunk_onnx is not None
    kind: Literal["KIND_GPU", "KIND_CPU"] = "KIND_GPU" if opt.device == "cuda" else "KIND_CPU"
    base = ModelConfig(
        name=m.trunk_model,
        max_batch_size=m.max_batch,
        inputs=m.trunk_inputs,
        outputs=m.outputs,
        dynamic_batching=_batching(opt),
        instance_groups=(InstanceGroup(opt.trunk_instances, kind),),
        warmups=_warm(opt, {t.name: t for t in m.trunk_inputs} | m.trunk_warm),
    )
    if opt.flavour == "local":
        params = {"intra_op_threads": str(opt.intra_op_threads)}
        files = {"model.py": _MODEL_SOURCES / "onnx_trunk.py", ONNX_FILE: m.trunk_onnx}
        return replace(base, backend="python", parameters=params), files | _sources(_TRUNK_SOURCES, contracts=False)
    if opt.flavour == "onnx":
        onnx = replace(base, platform="onnxruntime_onnx", backend="onnxruntime", default_model_filename=ONNX_FILE)
        return onnx, {ONNX_FILE: m.trunk_onnx}
    # gpu: `tipsv2 engines build` compiles model.plan from the ONNX file beside it, on the serving GPU model
    plan = replace(base, platform="tensorrt_plan", backend="tensorrt", default_model_filename=PLAN_FILE)
    return plan, {ONNX_FILE: m.trunk_onnx}


def _ensemble(m: _Modality, *, served: ServedModel) -> ModelFiles:
    """The served model of the ensemble shapes: embedding stage -> trunk, the intermediate tensors internal."""
    data = m.inputs[0].name
    between = {t.name: f"_{t.name}" for t in m.trunk_inputs}
    steps = (
        EnsembleStep(m.embed_model, {data: data, contract.ADAPTER: contract.ADAPTER}, between),
        EnsembleStep(m.trunk_model, between, {t.name: t.name for t in m.outputs}),
    )
    config = ModelConfig(
        name=m.tensors.name,
        platform="ensemble",
        max_batch_size=m.max_batch,
        inputs=m.inputs,
        outputs=m.outputs,
        parameters=served.parameters(),
        ensemble_steps=steps,
    )
    return config, {}


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


def _warm(opt: RepositoryOptions, inputs: dict[str, Tensor]) -> tuple[Warmup, ...]:
    return (Warmup("zeros", opt.warmup_batch, inputs),) if opt.warmup else ()
