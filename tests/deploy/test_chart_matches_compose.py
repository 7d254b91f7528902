"""The chart runs the images as the compose stack does, and tests/stack proves the compose stack works: ports, probes,
environment, volumes, users and Triton's flags must agree between the two (offline: helm template and compose config).
The CPU scenario (`ci/minimal-values.yaml`) is compared with compose's `cpu` profile: the same CPU Triton image."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

import pytest

from service.gateway.core.config import Settings
from tests.deploy.test_compose import config
from tests.deploy.tools import ROOT, container, one, render

DOCKERFILE = (ROOT / "Dockerfile").read_text()
TRITON_CPU_DOCKERFILE = (ROOT / "deploy" / "triton" / "cpu.Dockerfile").read_text()


@pytest.fixture(scope="module")
def chart() -> list[dict[str, Any]]:
    return render("minimal")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(config("cpu")["services"])


def env_of(workload: dict[str, Any], name: str) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in container(workload, name).get("env", [])}


def mounts_of(workload: dict[str, Any], name: str) -> dict[str, bool]:
    """mountPath -> read-only."""
    return {m["mountPath"]: bool(m.get("readOnly")) for m in container(workload, name)["volumeMounts"]}


def compose_mounts(service: dict[str, Any]) -> dict[str, bool]:
    mounts = {v["target"]: bool(v.get("read_only")) for v in service.get("volumes", [])}
    mounts |= {entry.split(":")[0]: False for entry in service.get("tmpfs", [])}
    return mounts


def probe_path(healthcheck: dict[str, Any]) -> str:
    """The URL path a compose health check (python -c "...urlopen('http://...')") requests."""
    url = re.search(r"http://[^'\"]+", " ".join(healthcheck["test"]))
    assert url, healthcheck
    return urlparse(url.group(0)).path


def image_user(dockerfile: str, stage: str | None = None) -> int:
    text = dockerfile if stage is None else dockerfile.split(f" AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]
    users = re.findall(r"^USER (\d+)", text, flags=re.MULTILINE)
    return int(users[-1])


def test_gateway_ports_probes_env_and_volumes_agree(chart: list[dict[str, Any]], compose: dict[str, Any]) -> None:
    deployment, service = one(chart, "Deployment", "-gateway"), compose["gateway"]
    chart_env, compose_env = env_of(deployment, "gateway"), service["environment"]
    for name in ("TIPS_ENVIRONMENT", "TIPS_TOKENIZER_PATH", "TIPS_ADAPTER_STORE", "TIPS_METRICS_PORT"):
        assert chart_env[name] == compose_env[name], name
    assert chart_env["TIPS_TRITON__URL"].rsplit(":", 1)[1] == compose_env["TIPS_TRITON__URL"].rsplit(":", 1)[1]

    ports = {p["name"]: p["containerPort"] for p in container(deployment, "gateway")["ports"]}
    api_port = Settings.model_fields["port"].default  # the workers' port unless TIPS_PORT says otherwise
    assert "TIPS_PORT" not in compose_env and "TIPS_PORT" not in chart_env
    assert ports == {"http": api_port, "metrics": int(compose_env["TIPS_METRICS_PORT"])}
    assert [p["target"] for p in service["ports"]] == [api_port]

    main = container(deployment, "gateway")
    assert main["readinessProbe"]["httpGet"]["path"] == probe_path(service["healthcheck"]) == "/readyz"
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz" and "/healthz" in DOCKERFILE.split("AS gateway\n")[1]

    assert mounts_of(deployment, "gateway") == compose_mounts(service)
    assert service["read_only"] is True and main["securityContext"]["readOnlyRootFilesystem"] is True
    assert service["cap_drop"] == main["securityContext"]["capabilities"]["drop"] == ["ALL"]
    pod_user = deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert pod_user == image_user(DOCKERFILE, "gateway") == 10001


def test_triton_flags_ports_probes_env_and_volumes_agree(chart: list[dict[str, Any]], compose: dict[str, Any]) -> None:
    deployment, service = one(chart, "Deployment", "-triton"), compose["triton-cpu"]
    main = container(deployment, "triton")
    assert main["args"][0] == service["command"][0] == "tritonserver"
    # Every flag compose starts Triton with, the chart gives too, with the same value (--backend-config repeats).
    assert set(service["command"][1:]) <= set(main["args"][1:]), sorted(set(service["command"]) - set(main["args"]))
    compose_flags = dict(arg.split("=", 1) for arg in service["command"][1:])

    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports["metrics"] == int(compose_flags["--metrics-port"])
    assert ports["grpc"] == int(compose["gateway"]["environment"]["TIPS_TRITON__URL"].rsplit(":", 1)[1])
    assert f":{ports['http']}/" in " ".join(service["healthcheck"]["test"])
    assert main["readinessProbe"]["httpGet"]["path"] == probe_path(service["healthcheck"]) == "/v2/health/ready"

    assert env_of(deployment, "triton") == {k: v for k, v in service["environment"].items()}
    # The chart mounts the model store at /models (the repository inside it); compose mounts the repository itself.
    chart_mounts = mounts_of(deployment, "triton")
    assert chart_mounts.pop("/models") is True and compose_mounts(service).pop("/models/repository") is True
    assert chart_mounts.pop("/dev/shm") is False  # compose: shm_size
    expected = compose_mounts(service)
    expected.pop("/models/repository")
    assert chart_mounts == expected
    assert service["read_only"] is True and main["securityContext"]["readOnlyRootFilesystem"] is True
    assert service["cap_drop"] == main["securityContext"]["capabilities"]["drop"] == ["ALL"]
    pod_user = deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert pod_user == image_user(TRITON_CPU_DOCKERFILE) == 1000


def test_the_cpu_scenario_runs_the_cpu_triton_image(chart: list[dict[str, Any]], compose: dict[str, Any]) -> None:
    image = container(one(chart, "Deployment", "-triton"), "triton")["image"]
    assert image.split(":")[0].endswith("/tipsv2-triton-cpu"), image
    assert compose["triton-cpu"]["build"]["dockerfile"] == "deploy/triton/cpu.Dockerfile"


def test_redis_runs_with_the_same_persistence_and_eviction(
    chart: list[dict[str, Any]], compose: dict[str, Any]
) -> None:
    chart_args = container(one(chart, "StatefulSet", "-redis"), "redis")["args"]
    compose_args = compose["redis"]["command"]

    def flags(args: list[str]) -> dict[str, str]:
        return {args[i]: args[i + 1] for i in range(1, len(args), 2)}

    expected = flags(compose_args)
    expected.pop("--protected-mode")  # compose's network only; the chart's NetworkPolicy guards Redis instead
    chart_flags = flags(chart_args)
    assert set(chart_flags) == set(expected)
    for flag in ("--appendonly", "--appendfsync", "--save", "--maxmemory-policy"):
        assert chart_flags[flag] == expected[flag], flag
