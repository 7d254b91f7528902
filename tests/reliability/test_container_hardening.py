"""Every pod the chart renders, in every CI scenario, runs as non-root with a read-only root filesystem, no privilege
escalation and no capabilities; every image the chart and compose run declares a non-root USER."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.tools import ROOT, SCENARIOS, render

# The HA scenario uses an external Redis; rendering it with the in-chart one as well covers the Redis pod there too.
RENDERINGS = [(s, ()) for s in SCENARIOS] + [("ha", ("--set", "redis.enabled=true"))]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    pods = []
    for o in objects:
        spec = o.get("spec", {})
        if o["kind"] == "Pod":
            pods.append((o["metadata"]["name"], spec))
        elif "template" in spec:
            pods.append((f"{o['kind']}/{o['metadata']['name']}", spec["template"]["spec"]))
        elif o["kind"] == "CronJob":
            pods.append((f"CronJob/{o['metadata']['name']}", spec["jobTemplate"]["spec"]["template"]["spec"]))
    return pods


@pytest.mark.parametrize(("scenario", "extra"), RENDERINGS, ids=[f"{s}{'+redis' if e else ''}" for s, e in RENDERINGS])
def test_every_pod_is_non_root_with_a_read_only_root_filesystem(scenario: str, extra: tuple[str, ...]) -> None:
    pods = pod_specs(render(scenario, *extra))
    assert {"gateway", "triton", "test"} <= {name.rsplit("-", 1)[-1] for name, _ in pods}
    for name, pod in pods:
        context = pod.get("securityContext", {})
        assert context.get("runAsNonRoot") is True and context.get("runAsUser", 1) != 0, name
        assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        for c in pod.get("initContainers", []) + pod["containers"]:
            security = c.get("securityContext", {})
            where = f"{name}/{c['name']}"
            assert security.get("readOnlyRootFilesystem") is True, where
            assert security.get("allowPrivilegeEscalation") is False and not security.get("privileged"), where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not security.get("capabilities", {}).get("add"), where
            assert security.get("runAsUser", 1) != 0, where


@pytest.mark.parametrize(
    ("dockerfile", "stage"),
    [("Dockerfile", "gateway"), ("Dockerfile", "trainer"), ("deploy/triton/Dockerfile", "triton"),
     ("deploy/triton/Dockerfile", "engine-build")],
)  # fmt: skip
def test_every_image_ends_as_a_non_root_user(dockerfile: str, stage: str) -> None:
    text = (ROOT / dockerfile).read_text()
    parts = re.split(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", text, flags=re.MULTILINE | re.IGNORECASE)
    stages = {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}
    users = re.findall(r"^USER\s+(\S+)", stages[stage], flags=re.MULTILINE)
    assert users, f"{dockerfile} stage {stage} runs as root (no USER)"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"{dockerfile} stage {stage} ends as {users[-1]}"
