"""Export of the trunks to ONNX with named tensors and dynamic axes, checked against PyTorch through onnxruntime.

Uses torch's `torch.export`-based exporter (the legacy TorchScript one is deprecated and cannot export
`nn.MultiheadAttention` under `no_grad`). Weights are embedded in the `.onnx` file (`external_data=False`) so that
each Triton model folder holds one self-contained file.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch.export import Dim

from training.export.trunks import IMAGE_INPUTS, IMAGE_OUTPUTS, TEXT_INPUTS, TEXT_OUTPUTS, ImageTrunk, TextTrunk
from training.tipsv2.model import TIPSv2

OPSET = 20
log = logging.getLogger(__name__)


class ParityError(RuntimeError):
    """An exported graph disagrees with PyTorch beyond tolerance."""


class SignatureError(RuntimeError):
    """An exported graph's input/output names or dynamic axes are not what the serving configs declare."""


@dataclass(frozen=True)
class ParityReport:
    graph: str
    max_abs_diff: float
    tolerance: float


def _export(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    dynamic_shapes: tuple[dict[int, Dim], ...],
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module.eval(),
            args,
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_shapes=dynamic_shapes,
            dynamo=True,
            external_data=False,
            opset_version=OPSET,
            verbose=False,
        )
    assert program is not None
    program.save(str(path), external_data=False)
    onnx.checker.check_model(str(path))
    dynamic = {name: set(axes) for name, axes in zip(inputs, dynamic_shapes, strict=True)}
    check_signature(path, inputs, outputs, dynamic)
    return path


def graph_signature(path: str | Path) -> dict[str, list[str | int]]:
    """Input and output names of an ONNX file with their dims (a symbolic dim is its name, a fixed one its size)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    return {
        value.name: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in (*graph.input, *graph.output)
    }


def check_signature(
    path: str | Path, inputs: tuple[str, ...], outputs: tuple[str, ...], dynamic: dict[str, set[int]]
) -> None:
    """The graph has exactly these named inputs and outputs; the `dynamic` input axes (and every output's batch
    axis) are symbolic, every other input axis fixed. Triton's configs and TensorRT's profiles rely on both."""
    graph = onnx.load(str(path), load_external_data=False).graph
    got_inputs, got_outputs = tuple(v.name for v in graph.input), tuple(v.name for v in graph.output)
    if got_inputs != inputs or got_outputs != outputs:
        raise SignatureError(
            f"{path}: graph has inputs {got_inputs} and outputs {got_outputs}; want {inputs} {outputs}"
        )
    signature = graph_signature(path)
    for name in inputs:
        for axis, dim in enumerate(signature[name]):
            if isinstance(dim, str) != (axis in dynamic.get(name, set())):
                raise SignatureError(f"{path}: input {name} axis {axis} is {dim!r}; dynamic axes are {dynamic}")
    for name in outputs:
        if not isinstance(signature[name][0], str):
            raise SignatureError(f"{path}: output {name} has a fixed batch axis {signature[name][0]}")


def export_text_trunk(model: TIPSv2, path: str | Path) -> Path:
    L, D = model.cfg.text_cfg.max_len, model.cfg.embed_dim
    embeddings = torch.randn(2, L, D)
    mask = torch.ones(2, L)
    mask[1, L // 2 :] = 0
    batch = Dim("batch", min=1, max=65536)
    return _export(
        TextTrunk(model), (embeddings, mask), Path(path), TEXT_INPUTS, TEXT_OUTPUTS, ({0: batch}, {0: batch})
    )


def export_image_trunk(model: TIPSv2, path: str | Path) -> Path:
    cfg = model.cfg.vision_cfg
    tokens = torch.randn(2, model.visual.num_prefix_tokens + cfg.pos_grid**2, cfg.embed_dim)
    batch = Dim("batch", min=1, max=65536)
    seq = Dim("seq", min=3, max=1 << 16)
    return _export(ImageTrunk(model), (tokens,), Path(path), IMAGE_INPUTS, IMAGE_OUTPUTS, ({0: batch, 1: seq},))


def onnx_run(path: str | Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return list(session.run(None, feeds))


def check_text_parity(model: TIPSv2, path: str | Path, tolerance: float = 1e-4, batch: int = 3) -> ParityReport:
    """Runs random inputs (with padding) through PyTorch and onnxruntime; raises ParityError beyond tolerance."""
    L, D = model.cfg.text_cfg.max_len, model.cfg.embed_dim
    gen = torch.Generator().manual_seed(1)
    embeddings = torch.randn(batch, L, D, generator=gen)
    mask = (torch.arange(L)[None, :] < torch.randint(1, L + 1, (batch, 1), generator=gen)).float()
    with torch.no_grad():
        want = TextTrunk(model).eval()(embeddings, mask).numpy()
    (got,) = onnx_run(path, {"embeddings": embeddings.numpy(), "token_mask": mask.numpy()})
    return _report("text_trunk", [want], [got], tolerance)


def check_image_parity(
    model: TIPSv2, path: str | Path, tolerance: float = 1e-4, batch: int = 2, grid: int | None = None
) -> ParityReport:
    cfg = model.cfg.vision_cfg
    grid = grid or cfg.pos_grid
    gen = torch.Generator().manual_seed(2)
    pixels = torch.rand(batch, 3, grid * cfg.patch_size, grid * cfg.patch_size, generator=gen)
    with torch.no_grad():
        tokens = model.visual.embed(pixels)
        want = [t.numpy() for t in ImageTrunk(model).eval()(tokens)]
    got = onnx_run(path, {"tokens": tokens.numpy()})
    return _report("image_trunk", want, got, tolerance)


def _report(graph: str, want: list[np.ndarray], got: list[np.ndarray], tolerance: float) -> ParityReport:
    diff = max(float(np.abs(w - g).max()) for w, g in zip(want, got, strict=True))
    if not diff <= tolerance:
        raise ParityError(f"{graph}: ONNX differs from PyTorch by {diff:.3g} (tolerance {tolerance:g})")
    log.info("%s parity: max |onnx - torch| = %.3g", graph, diff)
    return ParityReport(graph, diff, tolerance)
