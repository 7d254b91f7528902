from __future__ import annotations

import re

import pytest

from service.tools.jobs.defaults import JobDefaults, configmap_name
from service.tools.jobs.pods import MAX_JOB_NAME, Resources, job_name


def test_job_names_are_unique_dns_labels_short_enough_for_indexed_pod_host_names() -> None:
    names = {job_name("train", "a" * 80) for _ in range(20)}
    assert len(names) == 20
    assert all(len(n) <= MAX_JOB_NAME and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", n) for n in names)


def test_a_name_that_is_not_a_dns_label_is_refused() -> None:
    with pytest.raises(ValueError, match="DNS label"):
        job_name("adapt", "Retail_Adapter")


def test_gpu_resources_are_limits_as_the_device_plugin_requires() -> None:
    assert Resources("1", "2Gi", gpus=2).manifest() == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"memory": "2Gi", "nvidia.com/gpu": 2},
    }


def test_defaults_configmap_is_named_like_the_chart_names_it() -> None:
    assert configmap_name("prod") == "prod-tipsv2-jobs"
    assert configmap_name("tipsv2-prod") == "tipsv2-prod-jobs"


def test_defaults_with_unknown_or_missing_keys_are_refused(defaults: JobDefaults) -> None:
    with pytest.raises(ValueError, match="unknown job defaults"):
        JobDefaults.from_dict({"release": "x", "trainer_imag": "y"})
    with pytest.raises(ValueError, match="lack"):
        JobDefaults.from_dict({"release": "x"})
    with pytest.raises(ValueError, match="not JSON"):
        JobDefaults.from_json("{")
