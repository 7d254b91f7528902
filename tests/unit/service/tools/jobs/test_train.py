from __future__ import annotations

from service.tools.jobs import train
from service.tools.jobs.defaults import JobDefaults
from service.tools.jobs.pods import JOB_LABEL
from tests.unit.service.tools.jobs.conftest import GPU_POOL

CONFIG = {"b14.yaml": "model: {variant: tipsv2-b14}\n"}


def build(defaults: JobDefaults, **fields: object) -> tuple[dict, dict, dict]:
    request = train.TrainRequest(name="b14-run", configs=CONFIG, **fields)  # type: ignore[arg-type]
    submission = train.build(request, defaults, suffix="abcde")
    owned = {m["kind"]: m for m in submission.owned}
    return submission.job, owned["Service"], owned["ConfigMap"]


def test_multi_node_training_is_an_indexed_job_with_every_rank_running_at_once(defaults: JobDefaults) -> None:
    job, _, _ = build(defaults, nodes=4, gpus_per_node=8)
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 4
    assert job["spec"]["backoffLimit"] == 0, "one lost rank stalls the others: fail fast, resume by resubmitting"
    assert job["spec"]["suspend"] is True, "started by `submit` once the Service and config exist"


def test_each_pod_runs_torchrun_as_its_completion_index_and_finds_rank_zero(defaults: JobDefaults) -> None:
    job, service, _ = build(defaults, nodes=2, gpus_per_node=8)
    name = job["metadata"]["name"]
    pod = job["spec"]["template"]["spec"]
    command = pod["containers"][0]["command"]
    assert command[:5] == ["torchrun", "--nnodes", "2", "--nproc-per-node", "8"]
    assert command[command.index("--node-rank") + 1] == "$(NODE_RANK)"
    rank_env = next(e for e in pod["containers"][0]["env"] if e["name"] == "NODE_RANK")
    assert rank_env["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    assert command[command.index("--master-addr") + 1] == f"{name}-0.{name}"
    # Rank 0's DNS name exists because the headless Service is the pods' subdomain and selects them.
    assert pod["subdomain"] == service["metadata"]["name"] == name
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {JOB_LABEL: name}
    assert job["spec"]["template"]["metadata"]["labels"][JOB_LABEL] == name


def test_training_runs_the_cli_with_shipped_configs_and_writes_to_its_own_run_dir(defaults: JobDefaults) -> None:
    job, _, configmap = build(defaults, overrides=("optim.lr=3e-4",))
    name = job["metadata"]["name"]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("-m") : command.index("-m") + 3] == ["-m", "service.tools.cli.main", "train"]
    assert command[command.index("--config") + 1] == "/etc/tipsv2/files/b14.yaml"
    assert command[-2:] == [f"run.dir=/runs/{name}", "optim.lr=3e-4"]
    assert configmap["data"] == CONFIG
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["files"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert volumes["runs"]["persistentVolumeClaim"] == {"claimName": "tipsv2-runs", "readOnly": False}


def test_gpu_training_lands_on_the_gpu_pool_with_shared_memory(defaults: JobDefaults) -> None:
    job, _, _ = build(defaults, nodes=2, gpus_per_node=8)
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert pod["nodeSelector"] == GPU_POOL and pod["tolerations"]
    shm = next(v for v in pod["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert pod["containers"][0]["image"] == defaults.trainer_image


def test_single_node_training_uses_a_standalone_rendezvous(defaults: JobDefaults) -> None:
    job, _, _ = build(defaults, nodes=1, gpus_per_node=0)
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--standalone" in command and "--master-addr" not in command
    assert command[command.index("--nproc-per-node") + 1] == "1"
    pod = job["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]


def test_training_without_a_config_is_refused(defaults: JobDefaults) -> None:
    import pytest

    with pytest.raises(ValueError, match="at least one config"):
        train.build(train.TrainRequest(name="x", configs={}), defaults)
