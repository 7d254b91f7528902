"""Every object the product submits for a Job passes strict Kubernetes validation, built from the defaults a real
render of the chart publishes (so a drift between the chart's ConfigMap and the CLI fails here)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml

from service.tools.jobs import adapt, engines, train
from service.tools.jobs.defaults import CONFIGMAP_KEY, JobDefaults, configmap_name
from service.tools.jobs.pods import Resources, Submission
from tests.deploy.tools import KUBE_VERSIONS, kubernetes_validate, one, render


@pytest.fixture(scope="module")
def defaults() -> JobDefaults:
    configmap = one(render("gpu"), "ConfigMap", "-jobs")
    assert configmap["metadata"]["name"] == configmap_name("ci")
    return JobDefaults.from_json(configmap["data"][CONFIGMAP_KEY])


def submissions(defaults: JobDefaults) -> dict[str, Submission]:
    task = "kind: classification\nlabels: [cat, dog]\n"
    config = {"b14.yaml": "model: {variant: tipsv2-b14}\n"}
    return {
        "adapt on a GPU": adapt.build(adapt.AdaptRequest("retail", "weights/b14", task, "acme-key"), defaults),
        "adapt on CPU": adapt.build(
            adapt.AdaptRequest("retail", "weights/b14", task, "acme-key", Resources("2", "4Gi", 0), False), defaults
        ),
        "build engines": engines.build(engines.BuildEnginesRequest(precision="bf16"), defaults),
        "train on one CPU node": train.build(train.TrainRequest("tiny", config, nodes=1, gpus_per_node=0), defaults),
        "train on 4 nodes x 8 GPUs": train.build(
            train.TrainRequest("b14", config, nodes=4, gpus_per_node=8, deadline_seconds=86400), defaults
        ),
    }


def test_chart_publishes_complete_job_defaults(defaults: JobDefaults) -> None:
    assert defaults.release == "ci" and defaults.namespace == "tipsv2"
    assert defaults.gateway_url == "http://ci-tipsv2-gateway:8080"
    assert defaults.service_account == "ci-tipsv2-job-runner"
    assert defaults.data_claim == "tipsv2-data" and defaults.runs_claim == "tipsv2-runs"
    assert defaults.gpu_node_selector == {"nvidia.com/gpu.present": "true"}


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_job_object_passes_strict_validation(defaults: JobDefaults, kube_version: str) -> None:
    manifests = [m for s in submissions(defaults).values() for m in s.manifests()]
    assert {m["kind"] for m in manifests} == {"Job", "ConfigMap", "Service"}
    kubernetes_validate(yaml.safe_dump_all(manifests), kube_version)


def test_job_objects_stay_valid_once_owned_by_their_job(defaults: JobDefaults) -> None:
    # What `submit` sends after creating the Job: the owned objects carry an owner reference to it.
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "0f0e", "blockOwnerDeletion": True}
    owned = [
        {**m, "metadata": {**m["metadata"], "ownerReferences": [owner]}}
        for s in submissions(defaults).values()
        for m in s.owned
    ]
    kubernetes_validate(yaml.safe_dump_all(owned), KUBE_VERSIONS[-1])


def test_jobs_run_as_the_release_service_account_with_its_pull_secrets(defaults: JobDefaults) -> None:
    with_secrets = replace(defaults, image_pull_secrets=("registry-credentials",))
    for submission in submissions(with_secrets).values():
        pod = submission.job["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "ci-tipsv2-job-runner"
        assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
        assert json.dumps(pod).count('"runAsNonRoot": true') >= 2
