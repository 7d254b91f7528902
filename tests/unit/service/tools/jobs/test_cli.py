"""`tipsv2 jobs submit ... --dry-run --defaults FILE`: the manifests the command would create, with no cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from service.tools.cli.main import main
from service.tools.jobs.defaults import JobDefaults


@pytest.fixture
def defaults_file(defaults: JobDefaults, tmp_path: Path) -> Path:
    from dataclasses import asdict

    path = tmp_path / "defaults.json"
    path.write_text(json.dumps(asdict(defaults)))
    return path


def dry_run(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    assert main(["jobs", "submit", *argv, "--dry-run"]) == 0
    return [doc for doc in yaml.safe_load_all(capsys.readouterr().out) if doc]


def test_train_dry_run_prints_the_configmap_service_and_indexed_job(
    defaults_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "b14.yaml"
    config.write_text("optim: {lr: 1e-3}\n")
    docs = dry_run(
        capsys, "train", "--defaults", str(defaults_file), "--name", "b14", "--config", str(config),
        "--nodes", "2", "--gpus-per-node", "8", "-n", "research", "optim.lr=3e-4",
    )  # fmt: skip
    assert [d["kind"] for d in docs] == ["ConfigMap", "Service", "Job"]
    assert {d["metadata"]["namespace"] for d in docs} == {"research"}
    assert docs[0]["data"] == {"b14.yaml": "optim: {lr: 1e-3}\n"}
    assert (
        docs[2]["spec"]["completions"] == 2
        and docs[2]["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "optim.lr=3e-4"
    )


def test_adapt_dry_run_ships_the_local_task_file(
    defaults_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = tmp_path / "task.yaml"
    task.write_text("kind: retrieval\n")
    docs = dry_run(
        capsys, "adapt", "--defaults", str(defaults_file), "--adapter", "retail", "--base", "weights/b14",
        "--task", str(task), "--api-key-secret", "acme-key", "--gpus", "0", "--image", "my/trainer:dev",
    )  # fmt: skip
    assert [d["kind"] for d in docs] == ["ConfigMap", "Job"]
    assert docs[0]["data"] == {"task.yaml": "kind: retrieval\n"}
    pod = docs[1]["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["image"] == pod["containers"][0]["image"] == "my/trainer:dev"


def test_build_engines_dry_run(defaults_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = dry_run(capsys, "build-engines", "--defaults", str(defaults_file), "--precision", "fp32")
    assert [d["kind"] for d in docs] == ["Job"]
    assert docs[0]["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "fp32"


def test_bad_override_gets_a_clear_cli_error(
    defaults_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("{}\n")
    argv = ["jobs", "submit", "train", "--defaults", str(defaults_file), "--name", "x", "--config", str(config)]
    assert main([*argv, "lr", "--dry-run"]) == 2
    assert "override 'lr' is not KEY=VALUE" in capsys.readouterr().err


def test_upload_without_a_key_gets_a_clear_cli_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIPSV2_API_KEY", raising=False)
    argv = ["jobs", "upload-adapter", "--gateway", "http://g", "--name", "a", "--file", str(tmp_path / "a")]
    assert main(argv) == 2
    assert "TIPSV2_API_KEY" in capsys.readouterr().err


def test_submit_without_credentials_says_how_to_provide_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    assert main(["jobs", "submit", "build-engines", "--release", "prod"]) == 2
    err = capsys.readouterr().err
    assert "no Kubernetes credentials" in err and "--dry-run --defaults FILE" in err


def test_submit_to_an_unreachable_api_server_fails_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.tools.local.redis_server import free_port

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    argv = ["jobs", "submit", "build-engines", "--release", "prod", "--kubeconfig", str(kubeconfig)]
    assert main(argv) == 2
    assert "unreachable" in capsys.readouterr().err
