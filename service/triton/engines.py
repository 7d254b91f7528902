"""TensorRT engines for the `gpu` flavour, built from the ONNX trunks the repository generator put next to them.

    tipsv2_text_trunk/1/model.onnx  -> model.plan   profile: batch 1..max over (B, L, D) + (B, L)
    tipsv2_image_trunk/1/model.onnx -> model.plan   profile: batch 1..max x every served resolution, (B, 2 + N, D)

An engine is specific to the TensorRT version and the GPU model it was built on, so it is built on a node of the
serving GPU model, inside NVIDIA's TensorRT container of the same release as the Triton container that serves it
(deploy/triton/Dockerfile, target `engine-build`; deploy/k8s/build-engines-job.yaml). TensorRT cannot be installed
on the project's development machines: there `import_tensorrt` fails with a message saying where to build instead.

One optimization profile per engine spans every served shape (batch 1..max_batch_size, the smallest to the largest
served resolution) and is tuned at `opt` (the default resolution, the largest batch by default), so Triton needs no
profile selection. Inputs and outputs stay float32 (the tensor contract is identical across flavours); the
precision flag lets TensorRT run the layers in fp16 or bf16. After a build, `verify_engine` compares the engine with
onnxruntime on random inputs of several shapes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np

from service.triton.repository import IMAGE_TRUNK, ONNX_FILE, PLAN_FILE, TEXT_TRUNK, read_manifest

Precision = Literal["fp32", "fp16", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "fp16", "bf16")
ENGINE_INFO = "engine.json"
WHERE_TO_BUILD = (
    "build engines inside NVIDIA's TensorRT container on a node with the serving GPU model: "
    "deploy/triton/Dockerfile (target engine-build) or the Job in deploy/k8s/build-engines-job.yaml"
)
log = logging.getLogger(__name__)


class TensorRTNotAvailable(RuntimeError):
    """TensorRT's Python package cannot be imported here."""


class EngineBuildError(RuntimeError):
    """TensorRT refused the network, the profile, or produced an engine that disagrees with onnxruntime."""


def import_tensorrt() -> ModuleType:
    try:
        import tensorrt
    except (ImportError, OSError) as exc:  # OSError: the bindings are there but libnvinfer is not
        raise TensorRTNotAvailable(f"TensorRT is not available here ({exc}); {WHERE_TO_BUILD}") from exc
    module: ModuleType = tensorrt
    return module


@dataclass(frozen=True)
class ShapeRange:
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def __post_init__(self) -> None:
        if not len(self.min) == len(self.opt) == len(self.max):
            raise ValueError(f"shape range of mixed ranks: {self}")
        if not all(1 <= lo <= o <= hi for lo, o, hi in zip(self.min, self.opt, self.max, strict=True)):
            raise ValueError(f"shape range must satisfy 1 <= min <= opt <= max: {self}")


@dataclass(frozen=True)
class EngineSpec:
    model: str  # the Triton model the plan serves
    onnx: Path
    plan: Path
    profile: dict[str, ShapeRange]  # input name -> shapes, batch axis first
    precision: Precision


def text_trunk_profile(max_batch: int, text_len: int, dim: int, opt_batch: int | None = None) -> dict[str, ShapeRange]:
    opt = min(opt_batch or max_batch, max_batch)
    return {
        "embeddings": ShapeRange((1, text_len, dim), (opt, text_len, dim), (max_batch, text_len, dim)),
        "token_mask": ShapeRange((1, text_len), (opt, text_len), (max_batch, text_len)),
    }


def image_trunk_profile(
    max_batch: int, resolutions: tuple[int, ...], patch_size: int, dim: int, opt_batch: int | None = None
) -> dict[str, ShapeRange]:
    """Tokens (B, 2 + (S / patch)², D) for every served S; tuned at the default (first) resolution."""
    opt = min(opt_batch or max_batch, max_batch)
    lengths = [2 + (r // patch_size) ** 2 for r in resolutions]
    return {"tokens": ShapeRange((1, min(lengths), dim), (opt, lengths[0], dim), (max_batch, max(lengths), dim))}


def engine_specs(repository: str | Path, precision: Precision, opt_batch: int | None = None) -> list[EngineSpec]:
    """The two engines a generated `gpu` repository needs, read from its manifest."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    repository = Path(repository)
    manifest = read_manifest(repository)
    served, options = manifest["served"], manifest["options"]
    if options["flavour"] != "gpu":
        raise ValueError(
            f"{repository} was generated for the {options['flavour']} flavour; TensorRT engines serve the gpu "
            "flavour (tipsv2 export --flavour gpu)"
        )
    dim, patch = int(str(served["embed_dim"])), int(str(served["patch_size"]))
    resolutions = tuple(int(r) for r in served["resolutions"])  # type: ignore[attr-defined]
    profiles = {
        TEXT_TRUNK: text_trunk_profile(
            int(str(options["text_max_batch"])), int(str(served["text_len"])), dim, opt_batch
        ),
        IMAGE_TRUNK: image_trunk_profile(int(str(options["image_max_batch"])), resolutions, patch, dim, opt_batch),
    }
    specs = []
    for model, profile in profiles.items():
        version = repository / model / "1"
        onnx = version / ONNX_FILE
        if not onnx.is_file():
            raise FileNotFoundError(f"{onnx} is missing: the gpu flavour keeps each trunk's ONNX file next to its plan")
        specs.append(EngineSpec(model, onnx, version / PLAN_FILE, profile, precision))
    return specs


def build_engine(spec: EngineSpec, workspace_gib: float = 8.0, trt: ModuleType | None = None) -> Path:
    """ONNX -> serialized engine at `spec.plan` (written atomically) plus `engine.json` describing the build."""
    trt = trt or import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(spec.onnx)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"{spec.model}: TensorRT cannot parse {spec.onnx}: {errors}")
    inputs = {network.get_input(i).name for i in range(network.num_inputs)}
    if inputs != set(spec.profile):
        raise EngineBuildError(
            f"{spec.model}: ONNX inputs {sorted(inputs)} do not match the profile's {sorted(spec.profile)}"
        )
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if spec.precision != "fp32":
        flag = getattr(trt.BuilderFlag, spec.precision.upper(), None)
        if flag is None:
            raise EngineBuildError(f"TensorRT {trt.__version__} has no {spec.precision} builder flag")
        config.set_flag(flag)
    profile = builder.create_optimization_profile()
    for name, shapes in spec.profile.items():
        profile.set_shape(name, shapes.min, shapes.opt, shapes.max)
    config.add_optimization_profile(profile)
    log.info("building %s (%s) from %s", spec.model, spec.precision, spec.onnx)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"{spec.model}: TensorRT could not build an engine (see its log above)")
    _write_atomically(spec.plan, bytes(serialized))
    info = {
        "model": spec.model,
        "tensorrt": str(trt.__version__),
        "precision": spec.precision,
        "profile": {name: asdict(shapes) for name, shapes in spec.profile.items()},
        "onnx_sha256": _sha256(spec.onnx),
        "plan_bytes": spec.plan.stat().st_size,
    }
    (spec.plan.parent / ENGINE_INFO).write_text(json.dumps(info, indent=2))
    return spec.plan


def verify_engine(spec: EngineSpec, min_cosine: float = 0.999, seed: int = 0) -> dict[str, float]:
    """Runs the engine (polygraphy) and onnxruntime on random inputs at the profile's min, opt and max shapes;
    raises EngineBuildError when any output row's cosine similarity falls below `min_cosine`."""
    import onnxruntime as ort
    from polygraphy.backend.common import BytesFromPath
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    reference = ort.InferenceSession(str(spec.onnx), providers=["CPUExecutionProvider"])
    worst: dict[str, float] = {}
    with TrtRunner(EngineFromBytes(BytesFromPath(str(spec.plan)))) as runner:
        for point in ("min", "opt", "max"):
            feeds = sample_inputs(spec.profile, point, seed)
            want = dict(zip([o.name for o in reference.get_outputs()], reference.run(None, feeds), strict=True))
            got = runner.infer(feed_dict=feeds)
            for name, expected in want.items():
                cosine = _row_cosine(np.asarray(got[name], np.float32), expected)
                worst[name] = min(worst.get(name, 1.0), cosine)
    bad = {name: c for name, c in worst.items() if c < min_cosine}
    if bad:
        raise EngineBuildError(f"{spec.model}: engine disagrees with onnxruntime (worst row cosine {bad})")
    return worst


def sample_inputs(profile: Mapping[str, ShapeRange], point: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs at the profile's `point` (min|opt|max) shapes; masks keep at least one token per row.
    For the max point the batch is capped at 8 so that onnxruntime on a CPU stays quick."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, shapes in profile.items():
        shape = list(getattr(shapes, point))
        shape[0] = min(shape[0], 8)
        if name == "token_mask":
            lengths = rng.integers(1, shape[1] + 1, size=shape[0])
            feeds[name] = (np.arange(shape[1])[None, :] < lengths[:, None]).astype(np.float32)
        else:
            feeds[name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def _row_cosine(got: np.ndarray, want: np.ndarray) -> float:
    g, w = got.reshape(got.shape[0], -1), want.reshape(want.shape[0], -1)
    cosine = (g * w).sum(1) / (np.linalg.norm(g, axis=1) * np.linalg.norm(w, axis=1) + 1e-12)
    return float(cosine.min())


def _network_flags(trt: Any) -> int:
    # TensorRT 10 networks are always explicit-batch (the flag is deprecated); TensorRT 8 needs it set.
    major = int(str(trt.__version__).split(".")[0])
    flag = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    return 1 << int(flag) if flag is not None and major < 10 else 0


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
