from __future__ import annotations

import pytest

from service.tools.jobs import engines
from service.tools.jobs.defaults import JobDefaults
from service.tools.jobs.pods import Resources
from tests.unit.service.tools.jobs.conftest import GPU_POOL


def test_engine_build_runs_in_the_engine_image_on_the_serving_gpu_pool(defaults: JobDefaults) -> None:
    job = engines.build(engines.BuildEnginesRequest(precision="bf16"), defaults, suffix="abcde").job
    pod = job["spec"]["template"]["spec"]
    builder = pod["containers"][0]
    assert builder["image"] == defaults.engine_image
    assert builder["command"] == [
        "tipsv2", "engines", "build", "--repository", "/models/repository", "--precision", "bf16"
    ]  # fmt: skip
    assert builder["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == GPU_POOL
    models = next(v for v in pod["volumes"] if v["name"] == "models")
    assert models["persistentVolumeClaim"] == {"claimName": "prod-tipsv2-models", "readOnly": False}


def test_engine_build_without_a_gpu_is_refused(defaults: JobDefaults) -> None:
    with pytest.raises(ValueError, match="at least one GPU"):
        engines.build(engines.BuildEnginesRequest(resources=Resources(gpus=0)), defaults)


def test_unknown_precision_is_refused(defaults: JobDefaults) -> None:
    with pytest.raises(ValueError, match="precision 'int4'"):
        engines.build(engines.BuildEnginesRequest(precision="int4"), defaults)
