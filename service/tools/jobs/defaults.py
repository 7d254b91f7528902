"""What a release publishes for the Jobs the product creates: the chart's `<release>-jobs` ConfigMap (defaults.json).

`tipsv2 jobs submit --release R` reads it from the cluster; `--defaults FILE` reads the same JSON from a file (for
`--dry-run` without a cluster, or a cluster installed without the chart).
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

CONFIGMAP_KEY = "defaults.json"


@dataclass(frozen=True)
class JobDefaults:
    release: str
    namespace: str
    trainer_image: str  # the Dockerfile's `trainer` target: training, adapter training, the upload step
    engine_image: str  # the Triton/TensorRT image (deploy/triton/) that builds engines
    service_account: str  # what Job pods run as; it needs no API rights
    gateway_url: str  # in-cluster URL of the gateway, for adapter uploads
    model_store_claim: str = ""  # the claim holding the Triton repository ("" when fetched from object storage)
    repository_path: str = "repository"  # the repository's path inside the model store
    data_claim: str = ""  # data sets and base weights, mounted at /data
    runs_claim: str = ""  # training outputs, mounted at /runs
    image_pull_secrets: tuple[str, ...] = ()
    gpu_node_selector: dict[str, str] = field(default_factory=dict)
    gpu_tolerations: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> JobDefaults:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown job defaults {unknown}; expected some of {sorted(known)}")
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - set(raw))
        if missing:
            raise ValueError(f"job defaults lack {missing}")
        values = dict(raw)
        values["image_pull_secrets"] = tuple(values.get("image_pull_secrets") or ())
        values["gpu_tolerations"] = tuple(values.get("gpu_tolerations") or ())
        values["gpu_node_selector"] = dict(values.get("gpu_node_selector") or {})
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> JobDefaults:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"job defaults are not JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise ValueError("job defaults must be a JSON object")
        return cls.from_dict(raw)

    @classmethod
    def from_file(cls, path: Path) -> JobDefaults:
        return cls.from_json(path.read_text())


def configmap_name(release: str, chart: str = "tipsv2") -> str:
    """The defaults ConfigMap of a release, named as the chart's `tipsv2.fullname` helper names it."""
    fullname = release if chart in release else f"{release}-{chart}"
    return f"{fullname[:63].rstrip('-')}-jobs"
