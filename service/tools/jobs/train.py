"""Multi-node training: one Indexed Job whose pod `i` runs torchrun as node rank `i`, plus a headless Service so
that every pod reaches rank 0 at `<job>-0.<job>` (the Job sets each pod's host name; the Service gives it DNS).

    torchrun --nnodes N --nproc-per-node G --node-rank $(NODE_RANK) --master-addr <job>-0.<job> --master-port 29500 \
        -m service.tools.cli.main train --config /etc/tipsv2/files/<config> run.dir=/runs/<job> [KEY=VALUE ...]

Each node rank comes from the pod's completion-index annotation. All pods must run at once (parallelism equals
completions); a failed pod fails the Job (backoffLimit 0 by default), since the other ranks cannot continue without
it; re-submitting with the same `run.dir` resumes from the newest checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from service.tools.jobs import pods
from service.tools.jobs.defaults import JobDefaults

KIND = "train"
PORT = 29500
FILES_DIR = "/etc/tipsv2/files"
RUNS_DIR = "/runs"
DATA_DIR = "/data"
RANK_ANNOTATION = "batch.kubernetes.io/job-completion-index"


@dataclass(frozen=True)
class TrainRequest:
    name: str
    configs: dict[str, str]  # file name -> YAML content of the override files, in order (shipped in a ConfigMap)
    nodes: int = 1
    gpus_per_node: int = 1
    cpu: str = "8"
    memory: str = "64Gi"
    overrides: tuple[str, ...] = ()  # KEY=VALUE for `tipsv2 train`
    shm_size: str = "16Gi"  # DataLoader workers and NCCL share memory through /dev/shm
    backoff_limit: int = 0
    deadline_seconds: int | None = None


def torchrun_command(request: TrainRequest, job: str) -> list[str]:
    if request.nodes < 1 or request.gpus_per_node < 0:
        raise ValueError("nodes must be at least 1 and gpus_per_node not negative")
    procs = max(request.gpus_per_node, 1)  # CPU-only: one process per node (gloo)
    rendezvous = (
        ["--standalone"]
        if request.nodes == 1
        else ["--node-rank", "$(NODE_RANK)", "--master-addr", f"{job}-0.{job}", "--master-port", str(PORT)]
    )
    configs = [arg for name in request.configs for arg in ("--config", f"{FILES_DIR}/{name}")]
    overrides = [f"run.dir={PurePosixPath(RUNS_DIR) / job}", *request.overrides]
    return [
        "torchrun",
        "--nnodes",
        str(request.nodes),
        "--nproc-per-node",
        str(procs),
        *rendezvous,
        "-m",
        "service.tools.cli.main",
        "train",
        *configs,
        *overrides,
    ]


def build(request: TrainRequest, defaults: JobDefaults, suffix: str | None = None) -> pods.Submission:
    if not request.configs:
        raise ValueError("training needs at least one config file (`--config`)")
    name = pods.job_name(KIND, request.name, suffix)
    files = f"{name}-files"
    trainer = pods.container(
        "train",
        defaults.trainer_image,
        torchrun_command(request, name),
        pods.Resources(request.cpu, request.memory, request.gpus_per_node),
        [
            {"name": "data", "mountPath": DATA_DIR, "readOnly": True},
            {"name": "runs", "mountPath": RUNS_DIR},
            {"name": "files", "mountPath": FILES_DIR, "readOnly": True},
            {"name": "shm", "mountPath": "/dev/shm"},
        ],
        env=[
            {
                "name": "NODE_RANK",
                "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{RANK_ANNOTATION}']"}},
            },
        ],
    )
    trainer["ports"] = [{"name": "rendezvous", "containerPort": PORT, "protocol": "TCP"}]
    volumes = [
        pods.claim_volume("data", defaults.data_claim, read_only=True),
        pods.claim_volume("runs", defaults.runs_claim, read_only=False),
        {"name": "files", "configMap": {"name": files}},
        pods.scratch_volume("shm", request.shm_size, memory=True),
    ]
    pod = pods.pod_spec(defaults, [trainer], volumes, gpu=request.gpus_per_node > 0)
    pod["subdomain"] = name  # with the Service below: DNS names <job>-<index>.<job> for every rank
    job = pods.job(
        name,
        defaults,
        KIND,
        pod,
        backoff_limit=request.backoff_limit,
        deadline_seconds=request.deadline_seconds,
        completionMode="Indexed",
        completions=request.nodes,
        parallelism=request.nodes,
    )
    configs = pods.files_configmap(files, defaults, KIND, name, request.configs)
    return pods.Submission(job, (configs, rendezvous_service(name, defaults)))


def rendezvous_service(job: str, defaults: JobDefaults) -> pods.Manifest:
    """Headless: DNS records for each pod, published before the pods are ready (rank 0 must be found to start)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": pods.metadata(job, defaults, KIND, job),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {pods.JOB_LABEL: job},
            "ports": [{"name": "rendezvous", "port": PORT, "targetPort": PORT, "protocol": "TCP"}],
        },
    }
