"""The trunks as served by torch (the `local` flavour with runtime torch: CPU here, a GPU where there is one).

`save_torch_trunk` writes one tower's weights (safetensors, official parameter names) and its config into a
Triton model folder; `load_torch_trunk` rebuilds the tower from the model library and returns a callable with the
same named inputs and outputs as the ONNX trunk (`trunks.py`), computing in `dtype` and answering in float32 (the
tensor contract is identical across flavours). The GPU benchmark calls the same loader for its direct-torch
baseline, so "direct" and "served" run the same module.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from training.export.trunks import IMAGE_OUTPUTS, TEXT_OUTPUTS
from training.tipsv2.configs import ModelCfg
from training.tipsv2.model import TIPSv2
from training.tipsv2.text import TextEncoder
from training.tipsv2.vision import VisionTransformer

Tower = Literal["text", "image"]
WEIGHTS_FILE = "tower.safetensors"
CONFIG_FILE = "tower.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def save_torch_trunk(model: TIPSv2, tower: Tower, directory: str | Path) -> Path:
    """Writes `tower.safetensors` + `tower.json` into `directory` (created) and returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    module = model.text if tower == "text" else model.visual
    state = {k: v.detach().float().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE))
    spec = {"tower": tower, "variant": model.cfg.name, "model_config": model.cfg.to_dict()}
    (directory / CONFIG_FILE).write_text(json.dumps(spec, indent=2))
    return directory


class ServedTrunk:
    """Named float32 inputs -> the requested named float32 outputs, computed in `dtype` on `device`."""

    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()

    def __init__(self, tower: nn.Module, device: torch.device, dtype: torch.dtype, compile_mode: str = "") -> None:
        self.tower = tower.to(device=device, dtype=dtype).eval().requires_grad_(False)
        self.device, self.dtype = device, dtype
        # dynamic=True: one graph for every batch size (and image resolution) instead of a recompile per shape
        self.forward = torch.compile(self._forward, dynamic=True, mode=compile_mode) if compile_mode else self._forward

    def __call__(self, feeds: dict[str, torch.Tensor], wanted: Collection[str] = ()) -> dict[str, torch.Tensor]:
        inputs = [feeds[name].to(self.device, self.dtype, non_blocking=True) for name in self.input_names]
        wanted = tuple(wanted) or self.output_names
        with torch.inference_mode():
            outputs = self.forward(*inputs, dense="dense_tokens" in wanted)
        return {name: outputs[name].float() for name in wanted}

    def _forward(self, *inputs: torch.Tensor, dense: bool) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class ServedTextTrunk(ServedTrunk):
    tower: TextEncoder
    input_names = ("embeddings", "token_mask")
    output_names = TEXT_OUTPUTS

    def _forward(self, *inputs: torch.Tensor, dense: bool) -> dict[str, torch.Tensor]:
        embeddings, mask = inputs
        return {"text_embedding": self.tower.trunk(embeddings, mask)}


class ServedImageTrunk(ServedTrunk):
    tower: VisionTransformer
    input_names = ("tokens",)
    output_names = IMAGE_OUTPUTS

    def _forward(self, *inputs: torch.Tensor, dense: bool) -> dict[str, torch.Tensor]:
        (tokens,) = inputs
        p = self.tower.num_prefix_tokens
        if dense:  # the MaskCLIP value path costs one more last block: only when a request asks for it
            out, value_path = self.tower.trunk_with_dense(tokens)
            extra = {"dense_tokens": value_path[:, p:]}
        else:
            out, extra = self.tower.trunk(tokens), {}
        return {"cls1": out[:, 0], "cls2": out[:, 1], "patch_tokens": out[:, p:], **extra}


def load_torch_trunk(
    directory: str | Path, device: str | torch.device = "cpu", dtype: str = "float32", compile_mode: str = ""
) -> ServedTrunk:
    """Rebuilds the tower saved by `save_torch_trunk` (strict load) as a served trunk."""
    directory = Path(directory)
    spec = json.loads((directory / CONFIG_FILE).read_text())
    cfg = ModelCfg.from_dict(spec["variant"], spec["model_config"])
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    with torch.device("meta"):
        tower: nn.Module = TextEncoder(cfg.text_cfg) if spec["tower"] == "text" else VisionTransformer(cfg.vision_cfg)
    tower = tower.to_empty(device="cpu")
    tower.load_state_dict(load_file(str(directory / WEIGHTS_FILE)), strict=True)
    if isinstance(tower, TextEncoder):
        tower.reset_buffers()  # the position table is not a parameter: recompute it after `to_empty`
    served = ServedTextTrunk if spec["tower"] == "text" else ServedImageTrunk
    return served(tower, torch.device(device), DTYPES[dtype], compile_mode)
