"""docker-compose.yml, offline: it validates with every profile, and the services keep their promises (persistent
Redis, Triton on the GPU or on CPU under one name, a locked-down gateway, monitoring fed from the chart's files)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.deploy.tools import ROOT, run, tool

PROFILES = ("gpu", "cpu", "tools")
REQUIRED_ENV = {"TIPS_API_KEYS": "{}", "GRAFANA_ADMIN_PASSWORD": "test-only"}


def compose(*args: str, env: dict[str, str] | None = None) -> Any:
    import subprocess

    result = subprocess.run(
        [tool("docker-compose"), "-f", "docker-compose.yml", *args],
        cwd=ROOT,
        env={**os.environ, **(REQUIRED_ENV if env is None else env)},
        capture_output=True,
        text=True,
        check=False,
    )
    return result


def config(profile: str) -> dict[str, Any]:
    result = compose("--profile", profile, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


@pytest.mark.parametrize("profile", [None, *PROFILES])
def test_compose_file_is_valid_with_each_profile(profile: str | None) -> None:
    args = ["--profile", profile] if profile else []
    result = compose(*args, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_run_without_keys_or_a_grafana_password() -> None:
    result = compose("config", "-q", env={})
    assert result.returncode != 0 and "TIPS_API_KEYS" in result.stderr


def test_gpu_profile_reserves_a_gpu_and_builds_engines_first() -> None:
    services = config("gpu")["services"]
    devices = services["triton"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and devices[0]["driver"] == "nvidia"
    assert services["triton"]["depends_on"]["engines"]["condition"] == "service_completed_successfully"
    assert services["engines"]["build"]["target"] == "engine-build"
    assert "triton-cpu" not in services
    # the Python-backend stubs' shared memory holds a full batch from the start (docs/serving.md)
    assert "--backend-config=python,shm-default-byte-size=67108864" in services["triton"]["command"]


def test_cpu_profile_runs_triton_without_a_gpu_under_the_same_name() -> None:
    services = config("cpu")["services"]
    assert "triton" not in services
    cpu = services["triton-cpu"]
    assert "deploy" not in cpu
    assert cpu["networks"]["default"]["aliases"] == ["triton"]


def test_gateway_is_locked_down_and_shares_the_adapter_store_with_triton() -> None:
    services = config("gpu")["services"]
    gateway, triton = services["gateway"], services["triton"]
    assert gateway["read_only"] is True and gateway["build"]["target"] == "gateway"
    store = gateway["environment"]["TIPS_ADAPTER_STORE"]
    mounts = {v["target"]: v for v in gateway["volumes"]}
    triton_mounts = {v["target"]: v for v in triton["volumes"]}
    assert mounts[store]["source"] == triton_mounts[store]["source"] == "adapters"
    assert not mounts[store].get("read_only") and triton_mounts[store]["read_only"] is True
    assert gateway["environment"]["TIPS_TOKENIZER_PATH"] in mounts
    assert gateway["environment"]["TIPS_TRITON__URL"] == "triton:8001"


def test_redis_persists_an_append_only_file_on_a_volume() -> None:
    redis = config("cpu")["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert {v["target"]: v["source"] for v in redis["volumes"]}["/data"] == "redis-data"


def test_monitoring_uses_the_charts_alerts_and_dashboards() -> None:
    services = config("cpu")["services"]
    prometheus_mounts = {v["target"]: v["source"] for v in services["prometheus"]["volumes"]}
    grafana_mounts = {v["target"]: v["source"] for v in services["grafana"]["volumes"]}
    assert prometheus_mounts["/etc/prometheus/rules/tipsv2-alerts.yaml"] == str(
        ROOT / "helm" / "tipsv2" / "files" / "prometheus" / "tipsv2-alerts.yaml"
    )
    assert grafana_mounts["/var/lib/grafana/dashboards/tipsv2"] == str(
        ROOT / "helm" / "tipsv2" / "files" / "dashboards"
    )
    for source in [*prometheus_mounts.values(), *grafana_mounts.values()]:
        if source.startswith("/"):
            assert (ROOT / source).exists(), f"compose mounts {source}, which is not in the repository"


def test_compose_prometheus_config_is_valid() -> None:
    run(tool("promtool"), "check", "config", "--syntax-only", str(ROOT / "deploy" / "prometheus" / "prometheus.yml"))
