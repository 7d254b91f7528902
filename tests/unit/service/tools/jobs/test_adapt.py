from __future__ import annotations

import pytest

from service.tools.jobs import adapt
from service.tools.jobs.defaults import JobDefaults
from service.tools.jobs.pods import Resources
from tests.unit.service.tools.jobs.conftest import GPU_POOL, GPU_TAINT

TASK = "kind: classification\nlabels: [cat, dog]\n"


def build(defaults: JobDefaults, **fields: object) -> tuple[dict, dict]:
    request = adapt.AdaptRequest(
        adapter="retail",
        base="weights/b14",
        task_yaml=TASK,
        api_key_secret="acme-key",
        **fields,  # type: ignore[arg-type]
    )
    submission = adapt.build(request, defaults, suffix="abcde")
    return submission.job, submission.owned[0]


def test_adapter_is_trained_first_then_uploaded_through_the_adapter_api(defaults: JobDefaults) -> None:
    job, _ = build(defaults)
    pod = job["spec"]["template"]["spec"]
    trainer, uploader = pod["initContainers"][0], pod["containers"][0]
    out = trainer["command"][trainer["command"].index("--out") + 1]
    assert trainer["command"][:2] == ["tipsv2", "adapt"]
    assert trainer["command"][trainer["command"].index("--base") + 1] == "/data/weights/b14"
    assert uploader["command"][:3] == ["tipsv2", "jobs", "upload-adapter"]
    assert uploader["command"][uploader["command"].index("--file") + 1] == out
    assert uploader["command"][uploader["command"].index("--gateway") + 1] == "http://prod-tipsv2-gateway:8080"
    key = next(e for e in uploader["env"] if e["name"] == "TIPSV2_API_KEY")
    assert key["valueFrom"]["secretKeyRef"] == {"name": "acme-key", "key": "api-key"}
    # The file passes from one container to the next on a shared scratch volume, read-only for the uploader.
    assert {m["name"]: m.get("readOnly", False) for m in uploader["volumeMounts"]}["work"] is True
    assert {m["name"]: m.get("readOnly", False) for m in trainer["volumeMounts"]}["work"] is False


def test_task_file_travels_in_a_configmap_the_pod_mounts(defaults: JobDefaults) -> None:
    job, configmap = build(defaults)
    assert configmap["data"] == {"task.yaml": TASK}
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["task"]["configMap"]["name"] == configmap["metadata"]["name"]
    trainer = job["spec"]["template"]["spec"]["initContainers"][0]
    assert trainer["command"][trainer["command"].index("--task") + 1] == "/etc/tipsv2/task/task.yaml"


def test_gpu_adapter_training_requests_the_gpu_on_the_gpu_pool(defaults: JobDefaults) -> None:
    job, _ = build(defaults, resources=Resources("4", "16Gi", gpus=1))
    pod = job["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"], "the upload needs no GPU"
    assert pod["nodeSelector"] == GPU_POOL and pod["tolerations"] == [GPU_TAINT]
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_cpu_adapter_training_is_not_pinned_to_gpu_nodes(defaults: JobDefaults) -> None:
    job, _ = build(defaults, resources=Resources("4", "16Gi", gpus=0))
    pod = job["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "tolerations" not in pod


def test_upload_can_leave_the_new_version_inactive(defaults: JobDefaults) -> None:
    job, _ = build(defaults, activate=False)
    assert "--no-activate" in job["spec"]["template"]["spec"]["containers"][0]["command"]


def test_pods_run_restricted_as_the_images_non_root_user(defaults: JobDefaults) -> None:
    job, _ = build(defaults)
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "prod-tipsv2-job-runner"
    for c in pod["initContainers"] + pod["containers"]:
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "HOME", "value": "/tmp"} in c["env"]


def test_adapter_job_without_a_data_claim_says_what_is_missing(defaults: JobDefaults) -> None:
    import dataclasses

    with pytest.raises(ValueError, match="no claim for the 'data' volume"):
        build(dataclasses.replace(defaults, data_claim=""))
