"""Official-layout TIPSv2 weights -> the Hugging Face `transformers` layout (`Tipsv2Model`, transformers >= 5.14).

Only names and shapes change: the fused projections are split (`qkv`, `in_proj_*` -> q/k/v, SwiGLU `w12` -> gate/up),
everything else is renamed one-to-one. Used to cross-check our towers against transformers' independent port and to
run the official weights in transformers-based benchmarks. transformers itself is not imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from training.tipsv2.configs import ModelCfg
from training.tipsv2.model import TIPSv2

_VISION_BLOCK = {
    "norm1": "norm1",
    "attn.proj": "attention.o_proj",
    "ls1.gamma": "layer_scale1.lambda1",
    "norm2": "norm2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
    "mlp.w3": "mlp.down_proj",
    "ls2.gamma": "layer_scale2.lambda1",
}
_VISION_TOP = {
    "cls_token": "embeddings.cls_token",
    "pos_embed": "embeddings.position_embeddings",
    "register_tokens": "embeddings.register_tokens",
    "mask_token": "embeddings.mask_token",
    "patch_embed.proj": "embeddings.patch_embeddings.projection",
    "norm": "layernorm",
}
_TEXT_BLOCK = {
    "attn.out_proj": "self_attn.out_proj",
    "ln_1": "layer_norm1",
    "ln_2": "layer_norm2",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}
_TEXT_TOP = {"token_embedding": "embeddings.token_embedding", "ln_final": "final_layer_norm"}


def hf_config_kwargs(cfg: ModelCfg, temperature: float | None = None) -> dict[str, Any]:
    """Keyword arguments of `transformers.Tipsv2Config` describing the same architecture."""
    vision, text = cfg.vision_cfg, cfg.text_cfg
    return {
        "vision_config": {
            "hidden_size": vision.embed_dim,
            "num_hidden_layers": vision.depth,
            "num_attention_heads": vision.num_heads,
            "mlp_ratio": vision.mlp_hidden_dim / vision.embed_dim,
            "image_size": vision.img_size,
            "patch_size": vision.patch_size,
            "layer_norm_eps": vision.layer_norm_eps,
            "layerscale_value": vision.init_values,
            "use_swiglu_ffn": vision.ffn_layer == "swiglufused",
            "num_register_tokens": vision.num_register_tokens,
        },
        "text_config": {
            "vocab_size": text.vocab_size,
            "hidden_size": text.embed_dim,
            "intermediate_size": text.mlp_dim,
            "num_hidden_layers": text.depth,
            "num_attention_heads": text.num_heads,
            "max_position_embeddings": text.max_len,
            "layer_norm_eps": text.layer_norm_eps,
            "pooling_epsilon": text.pooling_eps,
        },
        "temperature_init_value": float(cfg.temperature if temperature is None else temperature),
    }


def to_hf_state_dict(model: TIPSv2) -> dict[str, torch.Tensor]:
    """The model's weights under `Tipsv2Model`'s parameter names (including `temperature`)."""
    out = {f"vision_model.{k}": v for k, v in _vision_to_hf(model.visual.state_dict()).items()}
    out |= {f"text_model.{k}": v for k, v in _text_to_hf(model.text.state_dict()).items()}
    out["temperature"] = model.temperature.detach().clone()
    return out


def _vision_to_hf(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("blocks."):
            _, index, rest = key.split(".", 2)
            prefix = f"encoder.layer.{index}."
            if rest.startswith("attn.qkv."):
                for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3), strict=True):
                    out[f"{prefix}attention.{name}.{rest.rsplit('.', 1)[1]}"] = part
            elif rest.startswith("mlp.w12."):
                for name, part in zip(("gate_proj", "up_proj"), value.chunk(2), strict=True):
                    out[f"{prefix}mlp.{name}.{rest.rsplit('.', 1)[1]}"] = part
            else:
                out[prefix + _rename(rest, _VISION_BLOCK)] = value
        else:
            out[_rename(key, _VISION_TOP)] = value
    return out


def _text_to_hf(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("transformer.resblocks."):
            index, rest = key.removeprefix("transformer.resblocks.").split(".", 1)
            prefix = f"encoder.layers.{index}."
            if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
                suffix = "weight" if rest.endswith("weight") else "bias"
                for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3), strict=True):
                    out[f"{prefix}self_attn.{name}.{suffix}"] = part
            else:
                out[prefix + _rename(rest, _TEXT_BLOCK)] = value
        else:
            out[_rename(key, _TEXT_TOP)] = value
    return out


def _rename(key: str, table: Mapping[str, str]) -> str:
    """Renames the longest matching module prefix of `key` (`attn.proj.weight` -> `attention.o_proj.weight`)."""
    for old in sorted(table, key=len, reverse=True):
        if key == old or key.startswith(old + "."):
            return table[old] + key[len(old) :]
    raise KeyError(f"no Hugging Face name for {key!r}")
