"""TensorRT engines for the gpu flavour: profiles from the repository, a clear failure where TensorRT is absent, the
builder driven as TensorRT's Python API expects (with a recording stand-in: TensorRT cannot be installed here), and
the deployment pieces that run the real build (Dockerfile stage, Kubernetes Job) consistent with the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import onnx
import pytest
import yaml

from service.tools.cli.main import build_parser, main
from service.triton.engines import (
    EngineBuildError,
    ShapeRange,
    TensorRTNotAvailable,
    build_engine,
    engine_specs,
    image_trunk_profile,
    import_tensorrt,
    sample_inputs,
    text_trunk_profile,
)
from tests.unit.service.triton.repo_fixtures import repository

ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
def gpu_repo(tmp_path: Path) -> Path:
    return repository(tmp_path, flavour="gpu", text_max_batch=128, image_max_batch=16)


@pytest.fixture
def no_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` raises ImportError, installed or not


def test_import_tensorrt_says_where_to_build_when_tensorrt_is_absent(no_tensorrt: None) -> None:
    with pytest.raises(TensorRTNotAvailable, match=r"TensorRT is not available here .*deploy/triton/Dockerfile"):
        import_tensorrt()


def test_engines_build_command_fails_cleanly_without_tensorrt(gpu_repo: Path, no_tensorrt: None, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["engines", "build", "--repository", str(gpu_repo)]) == 2
    err = capsys.readouterr().err
    assert "tipsv2 engines: error: TensorRT is not available here" in err
    assert "deploy/k8s/build-engines-job.yaml" in err and "Traceback" not in err
    assert not list(gpu_repo.glob("*/1/model.plan"))


def test_engines_dry_run_prints_the_profiles_of_both_trunks(gpu_repo: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["engines", "build", "--repository", str(gpu_repo), "--dry-run"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    profiles = {line["model"]: line["profile"] for line in lines}
    assert profiles["tipsv2_text_trunk"]["embeddings"] == {
        "min": [1, 64, 64],
        "opt": [128, 64, 64],
        "max": [128, 64, 64],
    }
    # resolutions (224, 112) with patch 14: 2 + 16² and 2 + 8² tokens; tuned at the default (first) resolution
    assert profiles["tipsv2_image_trunk"]["tokens"] == {"min": [1, 66, 64], "opt": [16, 258, 64], "max": [16, 258, 64]}
    assert all(line["onnx"].endswith("1/model.onnx") and line["plan"].endswith("1/model.plan") for line in lines)


def test_engine_specs_refuse_a_repository_of_another_flavour(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="generated for the local flavour"):
        engine_specs(repository(tmp_path), "fp16")


def test_profiles_cover_every_batch_size_and_served_resolution() -> None:
    image = image_trunk_profile(64, (448, 224), 14, 768, opt_batch=32)["tokens"]
    assert image == ShapeRange((1, 258, 768), (32, 1026, 768), (64, 1026, 768))
    text = text_trunk_profile(256, 64, 768)
    assert text["token_mask"] == ShapeRange((1, 64), (256, 64), (256, 64))
    with pytest.raises(ValueError, match="min <= opt <= max"):
        ShapeRange((1, 8), (16, 8), (8, 8))


def test_sample_inputs_follow_the_profile_with_realistic_masks() -> None:
    feeds = sample_inputs(text_trunk_profile(256, 64, 16), "max")
    assert feeds["embeddings"].shape == (8, 64, 16) and feeds["token_mask"].shape == (8, 64)
    assert (feeds["token_mask"].sum(axis=1) >= 1).all() and feeds["token_mask"][:, 0].all()


class RecordingTensorRT(SimpleNamespace):
    """The slice of TensorRT's Python API that `build_engine` uses, recording what it is asked to do."""

    def __init__(self, version: str = "10.8.0", parse_ok: bool = True, with_bf16: bool = True) -> None:
        calls: dict[str, Any] = {"shapes": {}, "flags": [], "pool": None, "profiles": 0}
        flags = {"FP16": "fp16-flag", **({"BF16": "bf16-flag"} if with_bf16 else {})}

        class Network:
            def __init__(self) -> None:
                self.inputs: list[str] = []

            num_inputs = property(lambda self: len(self.inputs))

            def get_input(self, i: int) -> SimpleNamespace:
                return SimpleNamespace(name=self.inputs[i])

        class Parser:
            num_errors = 0 if parse_ok else 1

            def __init__(self, network: Network, logger: object) -> None:
                self.network = network

            def parse_from_file(self, path: str) -> bool:
                self.network.inputs = [i.name for i in onnx.load(path).graph.input]
                return parse_ok

            def get_error(self, i: int) -> str:
                return "unsupported operator Foo"

        class Profile:
            def set_shape(self, name: str, lo: tuple, opt: tuple, hi: tuple) -> None:  # type: ignore[type-arg]
                calls["shapes"][name] = (tuple(lo), tuple(opt), tuple(hi))

        class Config:
            def set_memory_pool_limit(self, pool: str, size: int) -> None:
                calls["pool"] = (pool, size)

            def set_flag(self, flag: str) -> None:
                calls["flags"].append(flag)

            def add_optimization_profile(self, profile: Profile) -> None:
                calls["profiles"] += 1

        class Builder:
            def __init__(self, logger: object) -> None:
                pass

            def create_network(self, flags: int) -> Network:
                calls["network_flags"] = flags
                return Network()

            def create_builder_config(self) -> Config:
                return Config()

            def create_optimization_profile(self) -> Profile:
                return Profile()

            def build_serialized_network(self, network: Network, config: Config) -> bytes:
                return b"serialized-engine"

        super().__init__(
            __version__=version,
            calls=calls,
            Logger=type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None}),
            Builder=Builder,
            OnnxParser=Parser,
            MemoryPoolType=SimpleNamespace(WORKSPACE="workspace"),
            BuilderFlag=SimpleNamespace(**flags),
            NetworkDefinitionCreationFlag=SimpleNamespace(EXPLICIT_BATCH=0),
        )


def test_build_engine_gives_tensorrt_the_profile_precision_and_workspace(gpu_repo: Path) -> None:
    trt = RecordingTensorRT()
    image = next(s for s in engine_specs(gpu_repo, "fp16") if s.model == "tipsv2_image_trunk")
    plan = build_engine(image, workspace_gib=2, trt=trt)  # type: ignore[arg-type]
    assert plan == gpu_repo / "tipsv2_image_trunk" / "1" / "model.plan" and plan.read_bytes() == b"serialized-engine"
    assert not list(plan.parent.glob("*.partial"))
    assert trt.calls["shapes"] == {"tokens": ((1, 66, 64), (16, 258, 64), (16, 258, 64))}
    assert trt.calls["flags"] == ["fp16-flag"] and trt.calls["profiles"] == 1
    assert trt.calls["pool"] == ("workspace", 2 << 30) and trt.calls["network_flags"] == 0
    info = json.loads((plan.parent / "engine.json").read_text())
    assert info["tensorrt"] == "10.8.0" and info["precision"] == "fp16" and len(info["onnx_sha256"]) == 64


def test_build_engine_reports_what_tensorrt_refused(gpu_repo: Path) -> None:
    text = engine_specs(gpu_repo, "bf16")[0]
    with pytest.raises(EngineBuildError, match="unsupported operator Foo"):
        build_engine(text, trt=RecordingTensorRT(parse_ok=False))  # type: ignore[arg-type]
    with pytest.raises(EngineBuildError, match="no bf16 builder flag"):
        build_engine(text, trt=RecordingTensorRT(with_bf16=False))  # type: ignore[arg-type]
    old = RecordingTensorRT(version="8.6.1")
    build_engine(engine_specs(gpu_repo, "fp32")[0], trt=old)  # type: ignore[arg-type]
    assert old.calls["network_flags"] == 1 and old.calls["flags"] == []  # TensorRT 8: explicit batch, fp32


def test_engine_command_path_imports_no_torch(gpu_repo: Path) -> None:
    """The engine-build image has no torch: `tipsv2 engines build` must not need it."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from service.tools.cli.main import main\n"
        f"sys.exit(main(['engines', 'build', '--repository', {str(gpu_repo)!r}, '--dry-run']))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- the deployment pieces that run the real build ---------------------------------------------------------------


def job() -> dict:  # type: ignore[type-arg]
    return dict(yaml.safe_load((ROOT / "deploy" / "k8s" / "build-engines-job.yaml").read_text()))


def test_engine_build_job_passes_strict_kubernetes_schema_validation() -> None:
    validator = shutil.which("kubernetes-validate")
    assert validator, "kubernetes-validate is not installed (the dev extra)"
    path = ROOT / "deploy" / "k8s" / "build-engines-job.yaml"
    result = subprocess.run(
        [validator, "--strict", "-k", "1.34.0", str(path)], capture_output=True, text=True, env=dict(os.environ)
    )
    assert result.returncode == 0 and "ERROR" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_engine_build_job_runs_export_then_the_build_on_a_gpu_with_arguments_the_cli_accepts() -> None:
    spec = job()["spec"]["template"]["spec"]
    (export,), (build,) = spec["initContainers"], spec["containers"]
    parser = build_parser()
    exported = parser.parse_args(export["args"])
    built = parser.parse_args(build["args"])
    assert exported.flavour == "gpu" and str(exported.out) == "/models/repository"
    assert built.engines_command == "build" and str(built.repository) == str(exported.out)
    assert build["resources"]["limits"]["nvidia.com/gpu"] == 1 and "nvidia.com/gpu" not in export["resources"]["limits"]


def test_triton_dockerfile_builds_engines_and_serves_them_from_one_ngc_release() -> None:
    text = (ROOT / "deploy" / "triton" / "Dockerfile").read_text()
    stages = dict(line.split()[1::2][::-1] for line in text.splitlines() if line.startswith("FROM "))
    assert stages == {"engine-build": "${TENSORRT_BASE_IMAGE}", "triton": "${TRITON_BASE_IMAGE}"}
    # Both base images are build arguments (a mirror may replace them) whose defaults are one NGC release.
    assert "ARG TENSORRT_BASE_IMAGE=nvcr.io/nvidia/tensorrt:${NGC_RELEASE}-py3" in text
    assert "ARG TRITON_BASE_IMAGE=nvcr.io/nvidia/tritonserver:${NGC_RELEASE}-py3" in text
    assert "tipsv2 engines build --help" in text and 'ENTRYPOINT ["tipsv2", "engines", "build"]' in text
