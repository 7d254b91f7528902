"""The adapter-training Job: `tipsv2 adapt` (an init container, on a GPU when asked) writes the adapter into a
scratch volume, then the main container uploads it through the gateway's adapter API as the tenant whose key is in
the named Secret, so the adapter is validated, versioned and hot-swapped exactly as a user's upload would be."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from service.tools.jobs import pods
from service.tools.jobs.defaults import JobDefaults

KIND = "adapt"
TASK_DIR = "/etc/tipsv2/task"
WORK_DIR = "/work"
DATA_DIR = "/data"

ADAPT_RESOURCES = pods.Resources(cpu="4", memory="16Gi", gpus=1)


@dataclass(frozen=True)
class AdaptRequest:
    adapter: str  # adapter name in the tenant's namespace of adapters
    base: str  # base weights directory, relative to the data claim (or absolute inside the pod)
    task_yaml: str  # the task file's content (shipped in a ConfigMap)
    api_key_secret: str  # Secret holding the tenant's plaintext API key under `api-key`
    resources: pods.Resources = ADAPT_RESOURCES
    activate: bool = True
    extra_args: tuple[str, ...] = ()
    deadline_seconds: int = 6 * 3600


def build(request: AdaptRequest, defaults: JobDefaults, suffix: str | None = None) -> pods.Submission:
    name = pods.job_name(KIND, request.adapter, suffix)
    task_map = f"{name}-task"
    mounts: list[pods.Manifest] = [
        {"name": "data", "mountPath": DATA_DIR, "readOnly": True},
        {"name": "task", "mountPath": TASK_DIR, "readOnly": True},
        {"name": "work", "mountPath": WORK_DIR},
    ]
    adapter_file = f"{WORK_DIR}/{request.adapter}.safetensors"
    train = pods.container(
        "adapt",
        defaults.trainer_image,
        [
            "tipsv2",
            "adapt",
            "--base",
            str(PurePosixPath(DATA_DIR) / request.base),
            "--task",
            f"{TASK_DIR}/task.yaml",
            "--out",
            adapter_file,
            *request.extra_args,
        ],
        request.resources,
        mounts,
    )
    upload = pods.container(
        "upload",
        defaults.trainer_image,
        [
            "tipsv2",
            "jobs",
            "upload-adapter",
            "--gateway",
            defaults.gateway_url,
            "--name",
            request.adapter,
            "--file",
            adapter_file,
            *([] if request.activate else ["--no-activate"]),
        ],
        pods.Resources(cpu="100m", memory="256Mi"),
        [{"name": "work", "mountPath": WORK_DIR, "readOnly": True}],
        env=[
            {
                "name": "TIPSV2_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": request.api_key_secret, "key": "api-key"}},
            }
        ],
    )
    volumes = [
        pods.claim_volume("data", defaults.data_claim, read_only=True),
        {"name": "task", "configMap": {"name": task_map}},
        pods.scratch_volume("work", "1Gi"),
    ]
    if request.resources.gpus:
        volumes.append(pods.scratch_volume("shm", "2Gi", memory=True))
        train["volumeMounts"].append({"name": "shm", "mountPath": "/dev/shm"})
    pod = pods.pod_spec(defaults, [upload], volumes, gpu=request.resources.gpus > 0, init_containers=[train])
    job = pods.job(name, defaults, KIND, pod, backoff_limit=1, deadline_seconds=request.deadline_seconds)
    task = pods.files_configmap(task_map, defaults, KIND, name, {"task.yaml": request.task_yaml})
    return pods.Submission(job, (task,))
