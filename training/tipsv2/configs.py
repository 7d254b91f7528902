"""Model-config registry: one small JSON file per architecture under `model_configs/`, loaded at import.

The JSON keys map one-to-one onto the dataclasses below. This module imports no torch, so the gateway can read a
model's geometry (embedding width, patch size, text length) without the training stack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

_CONFIG_DIR = Path(__file__).parent / "model_configs"
_MODEL_CONFIGS: dict[str, ModelCfg] = {}


@dataclass(frozen=True)
class VisionCfg:
    embed_dim: int
    depth: int
    num_heads: int
    mlp_hidden_dim: int  # GELU MLP width; for SwiGLU the pre-2/3 width, as DINOv2 computes it
    ffn_layer: Literal["mlp", "swiglufused"] = "mlp"
    patch_size: int = 14
    img_size: int = 448  # the positional table covers (img_size / patch_size)² patches plus CLS1
    num_register_tokens: int = 1  # TIPSv2 reuses its single register token as the second CLS token
    layer_norm_eps: float = 1e-6
    init_values: float = 1.0  # LayerScale init; the official scripts build with 1.0, so `ls*.gamma` exist
    # The four blocks whose outputs the DPT heads read (the decoder notebook's `INTERMEDIATE_LAYERS_MAP`), shallow
    # to deep; the last is always the final block. Empty: the variant has no dense heads.
    dpt_layers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        layers = tuple(self.dpt_layers)  # JSON gives a list
        object.__setattr__(self, "dpt_layers", layers)
        if layers and (len(layers) != 4 or list(layers) != sorted(set(layers)) or not 0 <= layers[0] < self.depth):
            raise ValueError(f"dpt_layers must be 4 increasing block indices below depth {self.depth}, got {layers}")
        if layers and layers[-1] != self.depth - 1:
            raise ValueError(f"the last of dpt_layers must be the final block {self.depth - 1}, got {layers}")

    @property
    def pos_grid(self) -> int:
        return self.img_size // self.patch_size

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads


@dataclass(frozen=True)
class TextCfg:
    embed_dim: int
    depth: int
    num_heads: int
    mlp_dim: int
    vocab_size: int = 32000
    max_len: int = 64
    layer_norm_eps: float = 1e-5  # the PyTorch release uses torch's default, not the Flax 1e-6
    pooling_eps: float = 1e-8

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads


@dataclass(frozen=True)
class ModelCfg:
    name: str
    embed_dim: int
    vision_cfg: VisionCfg
    text_cfg: TextCfg
    temperature: float  # softmax temperature of zero-shot classification: softmax(cos / temperature)
    checkpoint_tag: str  # the `{tag}` of `tips_v2_oss_{tag}_{vision,text}.npz`
    checkpoint_tag_aliases: tuple[str, ...] = ()
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vision_cfg.embed_dim != self.embed_dim or self.text_cfg.embed_dim != self.embed_dim:
            raise ValueError(f"{self.name}: vision and text widths must equal embed_dim={self.embed_dim}")

    @classmethod
    def from_dict(cls, name: str, raw: dict[str, Any]) -> ModelCfg:
        raw = dict(raw)
        vision = _build(VisionCfg, raw.pop("vision_cfg"), f"{name}.vision_cfg")
        text = _build(TextCfg, raw.pop("text_cfg"), f"{name}.text_cfg")
        aliases = tuple(raw.pop("checkpoint_tag_aliases", ()))
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"{name}: unknown model config keys {sorted(unknown)}")
        return cls(name=name, vision_cfg=vision, text_cfg=text, checkpoint_tag_aliases=aliases, **raw)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "embed_dim": self.embed_dim,
            "vision_cfg": _asdict(self.vision_cfg),
            "text_cfg": _asdict(self.text_cfg),
            "temperature": self.temperature,
            "checkpoint_tag": self.checkpoint_tag,
        }
        if self.checkpoint_tag_aliases:
            out["checkpoint_tag_aliases"] = list(self.checkpoint_tag_aliases)
        if self.description:
            out["description"] = self.description
        return out


def _build(cls: type[Any], raw: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    return cls(**raw)


def _asdict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _rescan_model_configs() -> None:
    _MODEL_CONFIGS.clear()
    for path in sorted(_CONFIG_DIR.glob("*.json")):
        add_model_config(path)


def add_model_config(path: str | Path) -> ModelCfg:
    """Registers the JSON config at `path` under its file stem (e.g. `tipsv2-b14`)."""
    path = Path(path)
    cfg = ModelCfg.from_dict(path.stem, json.loads(path.read_text()))
    _MODEL_CONFIGS[cfg.name] = cfg
    return cfg


def list_models() -> list[str]:
    return sorted(_MODEL_CONFIGS)


def get_model_config(name: str) -> ModelCfg:
    """Looks a config up by registry name (`tipsv2-b14`) or by checkpoint tag (`b14`, `so400m14`)."""
    if name in _MODEL_CONFIGS:
        return _MODEL_CONFIGS[name]
    for cfg in _MODEL_CONFIGS.values():
        if name == cfg.checkpoint_tag or name in cfg.checkpoint_tag_aliases:
            return cfg
    raise KeyError(f"unknown TIPSv2 variant {name!r}; known: {', '.join(list_models())}")


_rescan_model_configs()
