"""The offline deployment tools the tests drive (helm, kubernetes-validate, docker-compose, promtool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "tipsv2"
SCENARIOS = sorted(p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml"))
# The chart's kubeVersion floor and the newest schema set kubernetes-validate ships that we check against.
KUBE_VERSIONS = ("1.27.0", "1.34.0")


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed: run `make setup` (scripts/install_tools.sh installs it)"
    return found


def run(*args: str, stdin: str | None = None, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, input=stdin, capture_output=True, text=True, cwd=cwd, check=False)
    if check:
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def values_file(scenario: str) -> Path:
    return CHART / "ci" / f"{scenario}-values.yaml"


def helm_template(*args: str, chart: Path = CHART, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(tool("helm"), "template", "ci", str(chart), "--namespace", "tipsv2", *args, check=check)


def render(scenario: str, *args: str) -> list[dict[str, Any]]:
    """The objects the chart renders for a CI scenario."""
    text = helm_template("-f", str(values_file(scenario)), *args).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(objects: list[dict[str, Any]], kind: str, name_suffix: str = "") -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]


def one(objects: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = find(objects, kind, name_suffix)
    assert len(found) == 1, f"expected one {kind} *{name_suffix}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def container(workload: dict[str, Any], name: str, init: bool = False) -> dict[str, Any]:
    pod = workload["spec"]["template"]["spec"]
    containers = pod.get("initContainers", []) if init else pod["containers"]
    return next(c for c in containers if c["name"] == name)


def kubernetes_validate(manifests: str, kube_version: str) -> subprocess.CompletedProcess[str]:
    """Strict validation (unknown fields are errors) of a multi-document manifest against a Kubernetes version."""
    result = run(tool("kubernetes-validate"), "--strict", "-k", kube_version, "-", stdin=manifests, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "ERROR" not in output, output
    return result
