"""The trunks as served by torch (the `local` flavour with runtime torch: CPU here, a GPU where there is one).

`save_torch_trunk` writes one tower's weights (safetensors, official parameter names) and its config into a
Triton model folder; `load_torch_trunk` rebuilds the tower from the model library and returns a callable with the
same named inputs and outputs as the ONNX trunk (`trunks.py`), computing in `dtype` and answering in float32 (the
tensor contract is identical across flavours), eager or compiled (`CompileSpec`). The fused serving model
(`service/triton/models/tipsv2_fused_torch.py`) and the GPU benchmark's direct rows call the same loader, so
"direct" and "served" run the same module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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
RECOMPILE_LIMIT = 64
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


@dataclass(frozen=True)
class CompileSpec:
    """How a served trunk is compiled. `buckets`: batch sizes with one static graph each (a batch is padded up to the
    next; one above the largest runs eager); none: one graph with a dynamic batch axis. Backend `inductor` takes
    `mode` (`reduce-overhead` adds CUDA graphs); `cudagraphs` records the eager kernels as CUDA graphs; `eager` only
    traces (cheap: what the CPU tests use to exercise the compiled path)."""

    mode: str = "default"
    backend: str = "inductor"
    buckets: tuple[int, ...] = ()

    def compile(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        # Each bucket at each image resolution is a graph of its own; past the limit dynamo would silently run eager.
        for key in ("recompile_limit", "cache_size_limit"):  # the name changed across torch releases
            if hasattr(torch._dynamo.config, key):
                setattr(torch._dynamo.config, key, max(RECOMPILE_LIMIT, getattr(torch._dynamo.config, key)))
        mode = self.mode if self.backend == "inductor" else None
        return torch.compile(fn, dynamic=not self.buckets, backend=self.backend, mode=mode)


class ServedTrunk:
    """Named inputs -> the requested named float32 outputs, computed in `dtype` on `device`, eager or compiled."""

    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()

    def __init__(
        self, tower: nn.Module, device: torch.device, dtype: torch.dtype, spec: CompileSpec | None = None
    ) -> None:
        self.tower = tower.to(device=device, dtype=dtype).eval().requires_grad_(False)
        self.device, self.dtype = device, dtype
        self.spec = spec
        self.compile_error = ""
        self._compiled: Callable[..., dict[str, torch.Tensor]] | None = None
        if spec is not None:
            try:
                self._compiled = spec.compile(self._forward)
            except Exception as exc:  # an unknown backend, a torch without a compiler: serve eager, say why
                self.compile_error = f"{type(exc).__name__}: {exc}"[:2000]

    @property
    def compiled(self) -> bool:
        """Whether batches run through the compiled graph (False: eager, by choice or after a failed compile)."""
        return self._compiled is not None

    def __call__(
        self, feeds: dict[str, torch.Tensor], wanted: Collection[str] = (), dense_rows: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """`dense_rows` (image trunks): the rows whose dense tokens are wanted (None: all); `dense_tokens` then holds
        those rows only, in that order."""
        inputs = [feeds[name].to(self.device, self.dtype, non_blocking=True) for name in self.input_names]
        wanted = tuple(wanted) or self.output_names
        with torch.inference_mode():
            outputs = self._run(inputs)
            outputs.update(self._extra(outputs, wanted, dense_rows))
            return {name: outputs[name].float() for name in wanted}

    def warm(self, samples: list[dict[str, torch.Tensor]]) -> None:
        """Compiles (and for CUDA graphs, records) every sample's graph now, in `initialize`, not on a request's
        time. A compile that fails leaves the trunk eager, with the reason in `compile_error`."""
        if self._compiled is None:
            return
        try:
            for sample in samples:
                with torch.inference_mode():  # as served: inference tensors, else dynamo guards on the dispatch keys
                    feeds = {name: value.clone() for name, value in sample.items()}
                for _ in range(3):  # CUDA graph trees warm up once, record once, then replay
                    self(feeds, self.output_names[:1])
        except Exception as exc:  # any compiler failure: serving eager beats not serving
            self.compile_error = f"{type(exc).__name__}: {exc}"[:2000]
            self._compiled = None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def bucket(self, rows: int) -> int | None:
        """The batch size `rows` runs at when compiled (None: eager)."""
        if self._compiled is None or self.spec is None:
            return None
        if not self.spec.buckets:
            return rows
        return next((b for b in sorted(self.spec.buckets) if b >= rows), None)

    def _run(self, inputs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        rows = inputs[0].shape[0]
        size = self.bucket(rows)
        if size is None or self._compiled is None:
            return self._forward(*inputs)
        if size > rows:  # pad with copies of row 0: any row is a valid input, and rows never mix
            inputs = [torch.cat((x, x[:1].expand(size - rows, *x.shape[1:]))) for x in inputs]
        return {name: value[:rows] for name, value in self._compiled(*inputs).items()}

    def _forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _extra(
        self, outputs: dict[str, torch.Tensor], wanted: tuple[str, ...], dense_rows: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        return {}


class ServedTextTrunk(ServedTrunk):
    tower: TextEncoder
    input_names = ("embeddings", "token_mask")
    output_names = TEXT_OUTPUTS

    def _forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        embeddings, mask = inputs
        return {"text_embedding": self.tower.trunk(embeddings, mask)}


class ServedImageTrunk(ServedTrunk):
    tower: VisionTransformer
    input_names = ("tokens",)
    output_names = IMAGE_OUTPUTS

    def _forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        (tokens,) = inputs
        p = self.tower.num_prefix_tokens
        out, hidden = self.tower.trunk_with_hidden(tokens)
        return {"cls1": out[:, 0], "cls2": out[:, 1], "patch_tokens": out[:, p:], "hidden": hidden}

    def _extra(
        self, outputs: dict[str, torch.Tensor], wanted: tuple[str, ...], dense_rows: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        if "dense_tokens" not in wanted:  # the MaskCLIP value path costs one more last block: only when asked for
            return {}
        hidden = outputs["hidden"] if dense_rows is None else outputs["hidden"].index_select(0, dense_rows)
        return {"dense_tokens": self.tower.dense_from_hidden(hidden)[:, self.tower.num_prefix_tokens :]}


def load_torch_trunk(
    directory: str | Path,
    device: str | torch.device = "cpu",
    dtype: str = "float32",
    compile_mode: str = "",
    compile_backend: str = "inductor",
    buckets: tuple[int, ...] = (),
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
    compiled = CompileSpec(compile_mode, compile_backend, buckets) if compile_mode else None
    return served(tower, torch.device(device), DTYPES[dtype], compiled)
