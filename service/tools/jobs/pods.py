"""Shared pieces of the Jobs' pods: names, labels, restricted containers, GPU resources, volumes, the Job shell."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from service.tools.jobs.defaults import JobDefaults

Manifest = dict[str, Any]

# Job names end up in pod host names (`<job>-<index>`) and label values: 63 characters at most, leaving room.
MAX_JOB_NAME = 52
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
JOB_LABEL = "tipsv2.io/job"
KIND_LABEL = "tipsv2.io/job-kind"
USER_ID = 10001  # the images' non-root user (Dockerfile)


def job_name(kind: str, name: str, suffix: str | None = None) -> str:
    """`tipsv2-<kind>-<name>-<5 random chars>`: unique per submission, DNS-safe, at most MAX_JOB_NAME."""
    if not NAME_RE.match(name):
        raise ValueError(f"name {name!r} must be lower-case letters, digits and '-' (a DNS label)")
    suffix = suffix or secrets.token_hex(3)[:5]
    stem = f"tipsv2-{kind}-{name}"[: MAX_JOB_NAME - len(suffix) - 1].rstrip("-")
    return f"{stem}-{suffix}"


def labels(defaults: JobDefaults, kind: str, job: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "tipsv2",
        "app.kubernetes.io/instance": defaults.release,
        "app.kubernetes.io/component": "job",
        "app.kubernetes.io/managed-by": "tipsv2-cli",
        KIND_LABEL: kind,
        JOB_LABEL: job,
    }


def metadata(name: str, defaults: JobDefaults, kind: str, job: str) -> Manifest:
    return {"name": name, "namespace": defaults.namespace, "labels": labels(defaults, kind, job)}


@dataclass(frozen=True)
class Resources:
    """CPU and memory requests (memory is also the limit) and GPUs (requested = limit, as the device plugin needs)."""

    cpu: str = "2"
    memory: str = "8Gi"
    gpus: int = 0

    def manifest(self) -> Manifest:
        if self.gpus < 0:
            raise ValueError("gpus cannot be negative")
        limits: dict[str, Any] = {"memory": self.memory}
        if self.gpus:
            limits["nvidia.com/gpu"] = self.gpus
        return {"requests": {"cpu": self.cpu, "memory": self.memory}, "limits": limits}


def container(
    name: str,
    image: str,
    command: list[str],
    resources: Resources,
    mounts: list[Manifest],
    env: list[Manifest] | None = None,
) -> Manifest:
    """A container that runs as the image's non-root user with nothing it does not need."""
    spec: Manifest = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "resources": resources.manifest(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *mounts],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    # A read-only root filesystem: anything that wants a home directory (caches, torch, TensorRT) gets /tmp.
    spec["env"] = [{"name": "HOME", "value": "/tmp"}, *(env or [])]
    return spec


def claim_volume(name: str, claim: str, read_only: bool) -> Manifest:
    if not claim:
        raise ValueError(f"no claim for the {name!r} volume: set it in the release's job defaults or on the command")
    return {"name": name, "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}


def scratch_volume(name: str, size: str, memory: bool = False) -> Manifest:
    source: Manifest = {"sizeLimit": size}
    if memory:
        source["medium"] = "Memory"
    return {"name": name, "emptyDir": source}


def pod_spec(
    defaults: JobDefaults,
    containers: list[Manifest],
    volumes: list[Manifest],
    gpu: bool,
    init_containers: list[Manifest] | None = None,
) -> Manifest:
    spec: Manifest = {
        "restartPolicy": "Never",
        "serviceAccountName": defaults.service_account,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "runAsGroup": USER_ID,
            "fsGroup": USER_ID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": containers,
        "volumes": [scratch_volume("tmp", "10Gi"), *volumes],
    }
    if init_containers:
        spec["initContainers"] = init_containers
    if defaults.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in defaults.image_pull_secrets]
    if gpu and defaults.gpu_node_selector:
        spec["nodeSelector"] = dict(defaults.gpu_node_selector)
    if gpu and defaults.gpu_tolerations:
        spec["tolerations"] = [dict(t) for t in defaults.gpu_tolerations]
    return spec


def job(
    name: str,
    defaults: JobDefaults,
    kind: str,
    pod: Manifest,
    backoff_limit: int = 0,
    ttl_seconds: int = 7 * 24 * 3600,
    deadline_seconds: int | None = None,
    **spec_fields: Any,
) -> Manifest:
    """A Job created suspended: `submit` creates what it owns (task files, Services) first, then starts it."""
    spec: Manifest = {
        "suspend": True,
        "backoffLimit": backoff_limit,
        "ttlSecondsAfterFinished": ttl_seconds,
        "template": {"metadata": {"labels": labels(defaults, kind, name)}, "spec": pod},
        **spec_fields,
    }
    if deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = deadline_seconds
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata(name, defaults, kind, name), "spec": spec}


def files_configmap(name: str, defaults: JobDefaults, kind: str, job_name: str, files: dict[str, str]) -> Manifest:
    """A ConfigMap carrying small local files (task or config YAML) into the Job's pods."""
    for key in files:
        if not re.fullmatch(r"[-._a-zA-Z0-9]+", key):
            raise ValueError(f"file name {key!r} cannot be a ConfigMap key")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(name, defaults, kind, job_name),
        "data": dict(files),
    }


@dataclass(frozen=True)
class Submission:
    """What to create for one Job: the Job (suspended) and the objects it owns, created first."""

    job: Manifest
    owned: tuple[Manifest, ...] = ()

    @property
    def name(self) -> str:
        return str(self.job["metadata"]["name"])

    def manifests(self) -> list[Manifest]:
        return [*self.owned, self.job]
