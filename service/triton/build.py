"""A checkpoint, or a model in memory, to a served Triton repository in one call: export writes its artifacts into a
temporary folder (`training.export.pipeline`), the repository is generated from what their manifest names
(`service.triton.repository`). The one place where the two rooms meet; `tipsv2 export`, the local stack, the tests
and the benchmarks all come through here."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from service.triton.repository import RepositoryOptions, repository_from_artifacts

if TYPE_CHECKING:
    from training.tipsv2.model import TIPSv2


def build_repository(
    weights_dir: str | Path,
    variant: str,
    out: str | Path,
    options: RepositoryOptions,
    resolutions: tuple[int, ...] = (),
    tolerance: float = 1e-4,
) -> Path:
    """Official-layout weights -> trunks (ONNX checked against PyTorch, or torch towers) + embedding-stage weights
    -> a Triton model repository at `out` (replaced)."""
    from training.export.pipeline import export_artifacts

    options = options.resolved()
    with tempfile.TemporaryDirectory(prefix="tipsv2-export-") as work:
        export_artifacts(weights_dir, variant, work, options.trunk_format, resolutions, tolerance)
        return repository_from_artifacts(work, out, options)


def build_model_repository(
    model: TIPSv2,
    model_id: str,
    out: str | Path,
    options: RepositoryOptions,
    resolutions: tuple[int, ...] = (),
    tolerance: float = 1e-4,
) -> Path:
    """An in-memory model -> a Triton model repository (the GPU benchmark builds random B/14 weights this way)."""
    from training.export.pipeline import export_model_artifacts

    options = options.resolved()
    with tempfile.TemporaryDirectory(prefix="tipsv2-export-") as work:
        export_model_artifacts(model, model_id, work, options.trunk_format, resolutions, tolerance)
        return repository_from_artifacts(work, out, options)
