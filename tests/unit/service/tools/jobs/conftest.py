"""Job defaults as a GPU release publishes them (the same keys as the chart's `<release>-tipsv2-jobs` ConfigMap)."""

from __future__ import annotations

import pytest

from service.tools.jobs.defaults import JobDefaults

GPU_POOL = {"nvidia.com/gpu.present": "true"}
GPU_TAINT = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture
def defaults() -> JobDefaults:
    return JobDefaults.from_dict(
        {
            "release": "prod",
            "namespace": "ml",
            "trainer_image": "registry.example.com/tipsv2-trainer:0.1.0",
            "engine_image": "registry.example.com/tipsv2-triton:0.1.0",
            "service_account": "prod-tipsv2-job-runner",
            "gateway_url": "http://prod-tipsv2-gateway:8080",
            "model_store_claim": "prod-tipsv2-models",
            "repository_path": "repository",
            "data_claim": "tipsv2-data",
            "runs_claim": "tipsv2-runs",
            "image_pull_secrets": ["registry-credentials"],
            "gpu_node_selector": GPU_POOL,
            "gpu_tolerations": [GPU_TAINT],
        }
    )
