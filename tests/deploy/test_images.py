"""The Dockerfiles, read statically: the targets compose and the chart use exist, every image builds anywhere (base
image and extra CA as build arguments, nothing BuildKit-only), the gateway is torch-free, every image is non-root and
the servers health-checked. tests/stack builds and runs them for real (`make stack-test`)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.deploy.tools import ROOT, one, render

DOCKERFILE = ROOT / "Dockerfile"
TRITON_DOCKERFILE = ROOT / "deploy" / "triton" / "Dockerfile"
TRITON_CPU_DOCKERFILE = ROOT / "deploy" / "triton" / "cpu.Dockerfile"
SERVICE_DOCKERFILES = (ROOT / "deploy" / "redis" / "Dockerfile", ROOT / "deploy" / "prometheus" / "Dockerfile")
ALL_DOCKERFILES = (DOCKERFILE, TRITON_DOCKERFILE, TRITON_CPU_DOCKERFILE, *SERVICE_DOCKERFILES)
# Each image's final stage (None: the file's last stage) and whether it is a server that must have a health check.
IMAGES = {
    "gateway": (DOCKERFILE, "gateway", True),
    "trainer": (DOCKERFILE, "trainer", False),
    "triton": (TRITON_DOCKERFILE, "triton", True),
    "engine-build": (TRITON_DOCKERFILE, "engine-build", False),
    "triton-cpu": (TRITON_CPU_DOCKERFILE, "triton-cpu", True),
    "redis": (SERVICE_DOCKERFILES[0], None, True),
    "prometheus": (SERVICE_DOCKERFILES[1], None, False),
}


def stages(dockerfile: Path) -> dict[str, str]:
    """Stage name -> its instructions."""
    text = dockerfile.read_text()
    parts = re.split(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", text, flags=re.MULTILINE | re.IGNORECASE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def final_stage(dockerfile: Path, stage: str | None) -> str:
    text = dockerfile.read_text()
    return stages(dockerfile)[stage] if stage else re.split(r"^FROM .*$", text, flags=re.MULTILINE)[-1]


def test_compose_builds_targets_that_exist() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    builds = [s["build"] for s in compose["services"].values() if "build" in s]
    builds += [compose["x-triton"]["build"]]
    for build in builds:
        dockerfile = ROOT / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), dockerfile
        if "target" in build:
            assert build["target"] in stages(dockerfile), f"{dockerfile} has no stage {build['target']}"


def test_every_image_builds_without_buildkit_or_a_registry_image_of_its_own() -> None:
    # The classic builder (DOCKER_BUILDKIT=0) must build them, and a `# syntax=` line makes BuildKit pull a frontend
    # image: neither may be needed. Every FROM is a build argument (the base) or an earlier stage.
    for dockerfile in ALL_DOCKERFILES:
        text = dockerfile.read_text()
        assert not re.search(r"^#\s*syntax\s*=", text, flags=re.MULTILINE | re.IGNORECASE), dockerfile
        buildkit_only = re.search(r"--mount=|--link\b|--chmod=|<<\s*['\"]?EOF", text)
        assert not buildkit_only, f"BuildKit-only syntax in {dockerfile}: {buildkit_only.group(0)}"
        names = set(stages(dockerfile))
        for image in re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE):
            assert image in names or re.fullmatch(r"\$\{\w*BASE_IMAGE\}", image), f"{dockerfile}: FROM {image}"


def test_images_that_download_accept_an_extra_ca_and_trust_it_only_while_building() -> None:
    for dockerfile in (DOCKERFILE, TRITON_DOCKERFILE, TRITON_CPU_DOCKERFILE):
        text = dockerfile.read_text()
        assert 'ARG EXTRA_CA_CERTS=""' in text and "update-ca-certificates" in text, dockerfile
    # The gateway and CPU Triton images copy a virtualenv out of the stage that trusted it; the others remove it.
    for stage in ("gateway", "triton-cpu"):
        dockerfile = DOCKERFILE if stage == "gateway" else TRITON_CPU_DOCKERFILE
        assert "EXTRA_CA_CERTS" not in final_stage(dockerfile, stage), stage
    removing = ((DOCKERFILE, "trainer"), (TRITON_DOCKERFILE, "triton"), (TRITON_DOCKERFILE, "engine-build"))
    for dockerfile, stage in removing:
        final = final_stage(dockerfile, stage)
        assert re.search(r"rm (-f )?/usr/local/share/ca-certificates/tipsv2-build-extra\.crt", final), stage
        assert "update-ca-certificates --fresh" in final, stage


def test_every_image_runs_as_non_root_and_servers_are_health_checked() -> None:
    for name, (dockerfile, stage, server) in IMAGES.items():
        final = final_stage(dockerfile, stage)
        users = re.findall(r"^USER (\S+)", final, flags=re.MULTILINE)
        assert users and users[-1].split(":")[0] not in {"0", "root"}, f"{name} runs as root"
        if server:
            assert "HEALTHCHECK" in final, f"{name} has no health check"


def test_the_trainer_image_cannot_silently_become_a_cuda_image() -> None:
    trainer = stages(DOCKERFILE)["trainer"]
    assert "ARG TORCH_SPEC=torch==2.13.0+cpu" in trainer and "ARG TORCH_CUDA=no" in trainer
    assert "torch.version.cuda" in trainer and "sys.exit(None if bool(cuda) == want" in trainer


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
    assert "triton-cpu" in stages(TRITON_CPU_DOCKERFILE)


def test_cpu_triton_image_installs_the_triton_cpu_extra() -> None:
    # One list of what the Python-backend models import: pyproject's `triton-cpu` extra, read by the image build.
    text = TRITON_CPU_DOCKERFILE.read_text()
    assert "['optional-dependencies']" in text and "deps['triton-cpu']" in text


def test_build_context_leaves_out_local_state() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "build"} <= ignored
