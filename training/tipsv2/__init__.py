"""The TIPSv2 model library: configs, towers, DPT heads, official checkpoints, tokenizer, preprocessing, zero-shot.

Importing this package does not import torch: `configs`, `pretrained`, `tokenizer`, `preprocess`, `prompts`,
`windows`, `download`, `heads` and `dense_maps` are torch-free (the gateway uses them); the torch-backed names below
load on first use.
See README.md in this directory for the variants, the fidelity checks and the zero-shot protocol.
"""

from __future__ import annotations

import importlib
from typing import Any

from training.tipsv2.configs import ModelCfg, TextCfg, VisionCfg, get_model_config, list_models

_LAZY = {
    "TIPSv2": "training.tipsv2.model",
    "create_model": "training.tipsv2.model",
    "VisionTransformer": "training.tipsv2.vision",
    "ImageFeatures": "training.tipsv2.vision",
    "LayerFeatures": "training.tipsv2.vision",
    "TextEncoder": "training.tipsv2.text",
    "DenseDecoder": "training.tipsv2.dpt",
    "create_decoder": "training.tipsv2.dpt",
    "unit_normals": "training.tipsv2.dpt",
    "load_decoder": "training.tipsv2.dpt_checkpoint",
    "load_pretrained_decoder": "training.tipsv2.dpt_checkpoint",
    "save_decoder": "training.tipsv2.dpt_checkpoint",
    "verify_decoder": "training.tipsv2.dpt_checkpoint",
    "load_pretrained_vision": "training.tipsv2.checkpoint",
    "predict_dense": "training.tipsv2.dense",
    "load_official": "training.tipsv2.checkpoint",
    "load_pretrained": "training.tipsv2.checkpoint",
    "save_official": "training.tipsv2.checkpoint",
    "CheckpointError": "training.tipsv2.checkpoint",
    "verify_official": "training.tipsv2.checkpoint",
    "convert_checkpoint": "training.tipsv2.checkpoint",
    "Tokenizer": "training.tipsv2.tokenizer",
    "download_official": "training.tipsv2.download",
    "TCL_TEMPLATES": "training.tipsv2.prompts",
    "label_text_embeddings": "training.tipsv2.zeroshot",
    "classify": "training.tipsv2.zeroshot",
    "dense_features": "training.tipsv2.zeroshot",
    "segment": "training.tipsv2.zeroshot",
    "miou": "training.tipsv2.zeroshot",
}

__all__ = [  # noqa: PLE0604  (the lazy names are strings too)
    "ModelCfg",
    "TextCfg",
    "VisionCfg",
    "get_model_config",
    "list_models",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
