"""The project's docker-compose.yml, run for real on a host where containers get host networking only (no bridge, as
on the CI machines): the resolved configuration of the `cpu` profile, moved onto free loopback ports.

Everything else is the file's own: images, commands, environment, volumes, read-only root filesystems, dropped
capabilities, health checks, restart policies, dependencies. What changes, and only that, service by service:
network_mode host (service names do not resolve, so the gateway's URLs point at 127.0.0.1), each listener bound to
127.0.0.1 on a chosen port, health checks aimed at those ports, and Prometheus's scrape targets likewise (its job
names, rule files and everything else read from deploy/prometheus/prometheus.yml). Grafana is left out: no image of
it can be built here; its dashboards are checked against Grafana's schema in tests/deploy.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from service.tools.local.redis_server import free_port
from tests.deploy.tools import ROOT, tool

SERVICES = ("redis", "triton-cpu", "gateway", "prometheus")
IMAGE_TAG = os.environ.get("IMAGE_TAG", "local")  # the tag `make images` (scripts/build_images.sh) gave the images
ADAPTER_STORE = "/var/lib/tipsv2/adapters"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"


@dataclass(frozen=True)
class Ports:
    """One free loopback port per listener of the stack."""

    gateway: int = field(default_factory=free_port)
    gateway_metrics: int = field(default_factory=free_port)
    triton_http: int = field(default_factory=free_port)
    triton_grpc: int = field(default_factory=free_port)
    triton_metrics: int = field(default_factory=free_port)
    redis: int = field(default_factory=free_port)
    prometheus: int = field(default_factory=free_port)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{getattr(self, name)}"


def images(tag: str = IMAGE_TAG) -> dict[str, str]:
    """The compose variables naming the images scripts/build_images.sh built with `tag`."""
    return {
        "GATEWAY_IMAGE": f"tipsv2-gateway:{tag}",
        "TRAINER_IMAGE": f"tipsv2-trainer:{tag}",
        "TRITON_CPU_IMAGE": f"tipsv2-triton-cpu:{tag}",
        "REDIS_IMAGE": f"tipsv2-redis:{tag}",
        "PROMETHEUS_IMAGE": f"tipsv2-prometheus:{tag}",
    }


def prometheus_config(ports: Ports, interval: str = "2s") -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with its targets on the loopback ports and short intervals (so a test sees
    scrapes and rule evaluations within seconds; the rules' own `for:` durations are kept)."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval=interval, evaluation_interval=interval)
    moved = {"gateway:9090": ports.gateway_metrics, "triton:8002": ports.triton_metrics}
    for job in config["scrape_configs"]:
        for group in job["static_configs"]:
            unknown = set(group["targets"]) - set(moved)
            assert not unknown, f"prometheus.yml scrapes {unknown}: map them to the stack's loopback ports here"
            group["targets"] = [f"127.0.0.1:{moved[target]}" for target in group["targets"]]
    return dict(config)


def _replace_flag(command: list[str], flag: str, value: object) -> list[str]:
    """`command` with `--flag=...` set to value (appended when absent)."""
    kept = [arg for arg in command if not arg.startswith(f"{flag}=")]
    return [*kept, f"{flag}={value}"]


def _python_probe(url: str) -> dict[str, Any]:
    code = f"import urllib.request; urllib.request.urlopen('{url}', timeout=2)"
    return {"test": ["CMD", "python3", "-c", code]}


def host_network(config: dict[str, Any], ports: Ports, prometheus_yml: Path) -> dict[str, Any]:
    """The resolved compose configuration (`docker compose config --format json`) moved onto host networking."""
    config = copy.deepcopy(config)
    services = {name: config["services"][name] for name in (*SERVICES, "exporter")}
    for service in services.values():
        service["network_mode"] = "host"
        service.pop("networks", None)
        service.pop("ports", None)
        service.pop("profiles", None)  # the file holds the `cpu` profile's services only: `down` must see them all

    redis = services["redis"]
    redis["command"] = [*redis["command"], "--bind", "127.0.0.1", "--port", str(ports.redis)]
    redis["healthcheck"]["test"] = ["CMD", "redis-cli", "-p", str(ports.redis), "ping"]

    triton = services["triton-cpu"]
    command = triton["command"]
    assert "--metrics-port=8002" in command, command
    for flag, value in (
        ("--http-port", ports.triton_http),
        ("--grpc-port", ports.triton_grpc),
        ("--metrics-port", ports.triton_metrics),
        ("--http-address", "127.0.0.1"),
        ("--grpc-address", "127.0.0.1"),
    ):
        command = _replace_flag(command, flag, value)
    triton["command"] = command
    triton["healthcheck"].update(_python_probe(f"{ports.url('triton_http')}/v2/health/ready"))

    gateway = services["gateway"]
    env = gateway["environment"]
    assert env["TIPS_TRITON__URL"] == "triton:8001" and env["TIPS_REDIS__URL"] == "redis://redis:6379/0", env
    assert env["TIPS_METRICS_PORT"] == "9090", env
    env.update(
        TIPS_TRITON__URL=f"127.0.0.1:{ports.triton_grpc}",
        TIPS_REDIS__URL=f"redis://127.0.0.1:{ports.redis}/0",
        TIPS_METRICS_PORT=str(ports.gateway_metrics),
        TIPS_METRICS_HOST="127.0.0.1",
        TIPS_HOST="127.0.0.1",  # where the workers listen (the image's health checks read TIPS_PORT too)
        TIPS_PORT=str(ports.gateway),
    )

    prometheus = services["prometheus"]
    prometheus["command"] = [*prometheus["command"], f"--web.listen-address=127.0.0.1:{ports.prometheus}"]
    mounts = {volume["target"]: volume for volume in prometheus["volumes"]}
    assert Path(mounts["/etc/prometheus/prometheus.yml"]["source"]) == PROMETHEUS_CONFIG
    mounts["/etc/prometheus/prometheus.yml"]["source"] = str(prometheus_yml)

    config["services"] = services
    config.pop("networks", None)
    return config


@dataclass
class Compose:
    """`docker compose` on one generated file, as one project."""

    file: Path
    project: str
    env: dict[str, str]

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        command = [tool("docker-compose"), "-p", self.project, "-f", str(self.file), *args]
        result = subprocess.run(
            command, cwd=ROOT, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout
        )
        if check:
            assert result.returncode == 0, f"{' '.join(command[1:])} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def health(self, service: str) -> str:
        """The container's health ("healthy", "starting", "unhealthy") or state when it has no health check."""
        result = self.run("ps", "--all", "--format", "json", service)
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, result.stdout
        return str(lines[0].get("Health") or lines[0]["State"])

    def wait_healthy(self, service: str, timeout: float = 180) -> float:
        """Seconds until `service` is healthy; fails with its log when it is not in time."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.health(service) == "healthy":
                return time.monotonic() - start
            time.sleep(1)
        logs = self.run("logs", "--no-color", "--tail", "60", service, check=False).stdout
        raise AssertionError(f"{service} not healthy after {timeout:.0f} s ({self.health(service)}):\n{logs}")

    def containers(self) -> list[str]:
        return _docker_lines("ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={self.project}")

    def volumes(self) -> list[str]:
        return _docker_lines("volume", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={self.project}")


def _docker_lines(*args: str) -> list[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=60)
    return [line for line in result.stdout.splitlines() if line.strip()]
