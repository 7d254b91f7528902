"""The Dockerfiles, read statically (no Docker daemon can pull base images here): the targets that compose and the
chart use exist, the gateway image is torch-free, non-root (the uid the chart runs it as) and health-checked."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.deploy.tools import ROOT, one, render

DOCKERFILE = ROOT / "Dockerfile"
TRITON_DOCKERFILE = ROOT / "deploy" / "triton" / "Dockerfile"


def stages(dockerfile: Path) -> dict[str, str]:
    """Stage name -> its instructions."""
    text = dockerfile.read_text()
    parts = re.split(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", text, flags=re.MULTILINE | re.IGNORECASE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_compose_builds_targets_that_exist() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    builds = [s["build"] for s in compose["services"].values() if "build" in s]
    builds += [compose["x-triton"]["build"]]
    for build in builds:
        dockerfile = ROOT / build.get("dockerfile", "Dockerfile")
        assert build["target"] in stages(dockerfile), f"{dockerfile} has no stage {build['target']}"


def test_gateway_image_is_torch_free_non_root_and_health_checked() -> None:
    gateway_stages = stages(DOCKERFILE)
    build, final = gateway_stages["gateway-build"], gateway_stages["gateway"]
    assert "'.[serve]'" in build and "find_spec('torch') is not None" in build, "the build must fail if torch slips in"
    assert not re.search(r"pip install[^\n]*torch", build + final)
    user = re.search(r"^USER (\d+):(\d+)$", final, flags=re.MULTILINE)
    assert user and int(user.group(1)) != 0
    assert "HEALTHCHECK" in final and "/healthz" in final
    pod = one(render("minimal"), "Deployment", "-gateway")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(user.group(1)), "the chart must run the image's own user"


def test_trainer_image_runs_the_cli_as_non_root() -> None:
    trainer = stages(DOCKERFILE)["trainer"]
    assert "'.[train,serve]'" in trainer and 'ENTRYPOINT ["tipsv2"]' in trainer
    assert re.search(r"^USER 10001:10001$", trainer, flags=re.MULTILINE)


def test_triton_side_has_the_targets_the_chart_and_compose_expect() -> None:
    assert {"triton", "engine-build"} <= set(stages(TRITON_DOCKERFILE))


def test_build_context_leaves_out_local_state() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "build"} <= ignored
