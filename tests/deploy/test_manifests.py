"""What we deploy is what we test: the compose file and every rendered chart object validate offline."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "tipsv2"


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed: run `make setup` (scripts/install_tools.sh)"
    return found


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, input=stdin, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_compose_file_is_valid() -> None:
    env = {**os.environ, "TIPS_API_KEYS": "{}"}
    result = subprocess.run(
        [tool("docker-compose"), "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_helm_lint_passes() -> None:
    run(tool("helm"), "lint", str(CHART))


@pytest.mark.parametrize("kube_version", ["1.29.0", "1.34.0"])
def test_rendered_chart_passes_strict_schema_validation(kube_version: str) -> None:
    rendered = run(tool("helm"), "template", "ci", str(CHART)).stdout
    assert "kind: Deployment" in rendered
    result = run(tool("kubernetes-validate"), "--strict", "-k", kube_version, "-", stdin=rendered)
    assert "ERROR" not in result.stdout + result.stderr
