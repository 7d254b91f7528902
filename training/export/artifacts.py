"""What export hands to the serving side: a folder of artifacts and the manifest that names them.

    artifacts.json               {"served": ServedModel's fields, "files": {artifact: file name in this folder}}
    text_embed.safetensors       the embedding stages' weights (`training.export.embed_stage`)
    image_embed.safetensors
    text_trunk.onnx              trunk format `onnx`: each checked against PyTorch through onnxruntime
    image_trunk.onnx
    text_trunk/, image_trunk/    trunk format `torch`: the towers as `training.export.torch_trunk` saves them

Export writes it (`training.export.pipeline`); the Triton side turns it into a model repository
(`service.triton.repository`) and knows nothing of how it was made. Torch-free: this module imports the standard
library and the contracts only, so whoever reads a folder needs neither torch nor the model library.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

from training.contracts.served import ServedModel

TrunkFormat = Literal["onnx", "torch"]
TRUNK_FORMATS: tuple[TrunkFormat, ...] = ("onnx", "torch")
MANIFEST = "artifacts.json"


@dataclass(frozen=True)
class Artifacts:
    """The files of one export; which trunk files are present depends on its trunk format."""

    text_embed: Path  # safetensors
    image_embed: Path  # safetensors
    text_trunk_onnx: Path | None = None
    image_trunk_onnx: Path | None = None
    text_trunk_torch: Path | None = None  # folder written by training.export.torch_trunk.save_torch_trunk
    image_trunk_torch: Path | None = None

    def embed(self, modality: str) -> Path:
        """The embedding-stage weights of `modality` (text|image)."""
        return self.text_embed if modality == "text" else self.image_embed

    def trunk_onnx(self, modality: str) -> Path | None:
        return self.text_trunk_onnx if modality == "text" else self.image_trunk_onnx

    def trunk_torch(self, modality: str) -> Path | None:
        return self.text_trunk_torch if modality == "text" else self.image_trunk_torch


def write_manifest(folder: str | Path, served: ServedModel, artifacts: Artifacts) -> Path:
    """Writes `artifacts.json` into `folder`, naming every artifact relative to it; returns its path."""
    folder = Path(folder)
    files = {}
    for spec in fields(artifacts):
        path: Path | None = getattr(artifacts, spec.name)
        if path is not None:
            files[spec.name] = str(Path(path).relative_to(folder))
    path = folder / MANIFEST
    path.write_text(json.dumps({"served": asdict(served), "files": files}, indent=2))
    return path


def read_artifacts(folder: str | Path) -> tuple[ServedModel, Artifacts]:
    """The served model and the artifacts an export folder's manifest names; FileNotFoundError for what is missing."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no exported model (no {MANIFEST})")
    manifest = json.loads(path.read_text())
    served = dict(manifest["served"])
    served["resolutions"] = tuple(served["resolutions"])
    files = {name: folder / relative for name, relative in manifest["files"].items()}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{path} names artifacts that are not there: {', '.join(missing)}")
    return ServedModel(**served), Artifacts(**files)
