"""The engine-build Job submitted from the CLI: `tipsv2 engines build` on a GPU node of the serving pool, writing
TensorRT plans into the release's model store (after a new `tipsv2 export --flavour gpu`). The chart's own
engine-build Job does the same at install time; Triton loads new plans when its pods restart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from service.tools.jobs import pods
from service.tools.jobs.defaults import JobDefaults

KIND = "build-engines"
MODELS_DIR = "/models"

BUILD_RESOURCES = pods.Resources(cpu="4", memory="16Gi", gpus=1)


@dataclass(frozen=True)
class BuildEnginesRequest:
    name: str = "engines"  # a label for the Job name
    precision: str = "fp16"
    repository_path: str | None = None  # inside the model store; None: the release's
    resources: pods.Resources = BUILD_RESOURCES
    extra_args: tuple[str, ...] = ()
    deadline_seconds: int = 2 * 3600


def build(request: BuildEnginesRequest, defaults: JobDefaults, suffix: str | None = None) -> pods.Submission:
    if request.precision not in ("fp16", "bf16", "fp32"):
        raise ValueError(f"precision {request.precision!r}: choose fp16, bf16 or fp32")
    if request.resources.gpus < 1:
        raise ValueError("TensorRT engines are built on the GPU model that serves them: ask for at least one GPU")
    name = pods.job_name(KIND, request.name, suffix)
    repository = PurePosixPath(MODELS_DIR) / (request.repository_path or defaults.repository_path)
    builder = pods.container(
        "build",
        defaults.engine_image,
        [
            "tipsv2",
            "engines",
            "build",
            "--repository",
            str(repository),
            "--precision",
            request.precision,
            *request.extra_args,
        ],
        request.resources,
        [{"name": "models", "mountPath": MODELS_DIR}],
    )
    volumes = [pods.claim_volume("models", defaults.model_store_claim, read_only=False)]
    pod = pods.pod_spec(defaults, [builder], volumes, gpu=True)
    return pods.Submission(
        pods.job(name, defaults, KIND, pod, backoff_limit=1, deadline_seconds=request.deadline_seconds)
    )
