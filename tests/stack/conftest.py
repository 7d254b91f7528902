"""The compose stack, once per session: the images `make images` built, a model made by the trainer image
(`tipsv2 local up --prepare-only` in compose's exporter service), then Redis, the CPU Triton, the gateway and
Prometheus up on loopback ports; torn down at the end, volumes included, and checked gone.

Nothing here skips: without a Docker daemon or the images the session fails (run `make stack-test`, which builds them).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
import yaml

from service.gateway.core.config import hash_key
from tests.deploy.tools import ROOT
from tests.stack.compose import (
    ADAPTER_STORE,
    IMAGE_TAG,
    SERVICES,
    Compose,
    Ports,
    host_network,
    images,
    prometheus_config,
)
from tests.stack.support import Stack, say

WORKDIR = ROOT / "build" / "stack"  # under ./build, which compose's exporter mounts at /out
TENANT = "acme"


def _require_docker_and_images() -> None:
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        pytest.fail(f"no Docker daemon answers (DOCKER_HOST={os.environ.get('DOCKER_HOST', 'default')}): {info.stderr}")
    missing = [
        image
        for image in images().values()
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0
    ]
    if missing:
        pytest.fail(f"images missing: {missing}; build them with `make images` (IMAGE_TAG={IMAGE_TAG})")
    say(f"Docker {info.stdout.strip()}, images :{IMAGE_TAG} present")


def _timed(stack: Stack, name: str, start: float) -> None:
    stack.timings[name] = time.monotonic() - start
    say(f"{name}: {stack.timings[name]:.1f} s")


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    _require_docker_and_images()
    WORKDIR.mkdir(parents=True, exist_ok=True)
    ports = Ports()
    key = f"tipsv2-stack-{secrets.token_hex(16)}"
    model = WORKDIR / "local"
    env = {
        **images(),
        "TIPS_API_KEYS": json.dumps({hash_key(key): TENANT}),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_hex(8),
        "MODEL_REPOSITORY": str(model / "model_repository"),
        "TOKENIZER": str(model / "weights" / "tokenizer.model"),
    }
    project = f"tipsv2-stack-{os.getpid()}"
    original = Compose(ROOT / "docker-compose.yml", project, env)
    config = json.loads(original.run("--profile", "cpu", "--profile", "tools", "config", "--format", "json").stdout)
    prometheus_yml = WORKDIR / "prometheus.yml"
    prometheus_yml.write_text(yaml.safe_dump(prometheus_config(ports)))
    derived = WORKDIR / "compose.host-network.json"
    derived.write_text(json.dumps(host_network(config, ports, prometheus_yml), indent=2))
    compose = Compose(derived, project, env)
    say(f"project {project}; ports {ports}; compose file {derived.relative_to(ROOT)}")

    try:
        # The model, made by the trainer image as the README says (the exporter service, as the calling user).
        start = time.monotonic()
        compose.run(
            "run", "--rm", "--user", f"{os.getuid()}:{os.getgid()}", "exporter",
            "local", "up", "--prepare-only", "--dir", "/out/stack/local", "--adapter-store", ADAPTER_STORE,
        )  # fmt: skip
        manifest = json.loads((model / "model_repository" / "tipsv2_manifest.json").read_text())
        assert manifest["options"]["adapter_store"] == ADAPTER_STORE
        headers = {"Authorization": f"Bearer {key}"}
        stack = Stack(compose, ports, headers, **_served(manifest), model_repository=model / "model_repository")
        _timed(stack, "model prepared by the trainer image", start)

        start = time.monotonic()
        compose.run("up", "--detach", "--no-build", "--pull", "never", *SERVICES)
        for service in ("redis", "triton-cpu", "gateway"):
            compose.wait_healthy(service)
        _wait_prometheus(ports)
        _timed(stack, "stack up and healthy", start)
        yield stack
    finally:
        _tear_down(compose, failed=request.session.testsfailed > 0)


def _served(manifest: dict) -> dict[str, object]:  # type: ignore[type-arg]
    served = manifest["served"]
    return {"embed_dim": int(served["embed_dim"]), "model_id": str(served["model_id"])}


def _wait_prometheus(ports: Ports, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{ports.url('prometheus')}/-/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("Prometheus not ready")


def _tear_down(compose: Compose, failed: bool) -> None:
    logs = compose.run("logs", "--no-color", "--timestamps", check=False).stdout
    log_file = WORKDIR / "compose.log"
    log_file.write_text(logs)
    if failed:
        say(f"logs of the stack (also in {log_file.relative_to(ROOT)}):\n" + "\n".join(logs.splitlines()[-200:]))
    start = time.monotonic()
    compose.run("down", "--volumes", "--remove-orphans", "--timeout", "20")
    left = compose.containers() + compose.volumes()
    assert not left, f"the stack left containers or volumes behind: {left}"
    say(f"stack torn down (containers and volumes removed) in {time.monotonic() - start:.1f} s")
