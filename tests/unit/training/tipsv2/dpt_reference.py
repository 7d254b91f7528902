"""An independent DPT decoder, written from the published description only, on the official Flax-layout arrays.

Nothing here calls `training.tipsv2` or torch's conv / interpolate functions: every operation is spelled out from
its definition on channels-last tensors, and the weights are read in the files' own Flax layout (no conversion to
PyTorch layouts, so a wrong transpose or a missing kernel flip in the library shows up as a mismatch):

- Conv (Flax `nn.Conv`, kernel (kh, kw, Cin, Cout)): cross-correlation, `out[y, x] = sum_ij in[y*s + i - p, x*s + j - p]
  @ K[i, j]` with zero padding p; the official PyTorch port pads 1 on both sides of the 3x3 convs (stride 1 and 2).
- Transposed conv (Flax `nn.ConvTranspose` = `lax.conv_transpose` without kernel transposition): the input dilated
  by the stride (s - 1 zeros between pixels), padded k - 1 on both sides (`_conv_transpose_padding` for k = s), then
  correlated with K as stored.
- Bilinear resizes as torch defines them: `align_corners=True` (the fusion blocks' x2) maps output o to input
  o (n_in - 1) / (n_out - 1); `align_corners=False` maps it to (o + 0.5) n_in / n_out - 0.5, clamped at 0. Bicubic
  (normals post-processing) is Keys' cubic convolution with A = -0.75, taps clamped to the border. The sampling
  positions can be evaluated in float32 (`coords=np.float32`), as a float32 torch run evaluates them; all other
  arithmetic is in the tensors' dtype (float64 in the tests).
- The architecture and head post-processing: `pytorch/decoders.py` and `TIPS_decoder_inference.ipynb` (HEAD 4db271d).
"""

from __future__ import annotations

import math

import numpy as np
import torch

Arrays = dict[str, torch.Tensor]
Features = list[tuple[np.ndarray, np.ndarray]]  # (CLS (B, D), patch map (B, D, h, w)) per layer


def as_tensors(arrays: dict[str, np.ndarray], dtype: torch.dtype) -> Arrays:
    """Flax-layout arrays (keys with or without the `decoder/` prefix) as tensors of `dtype`."""
    return {k.removeprefix("decoder/"): torch.from_numpy(np.asarray(v)).to(dtype) for k, v in arrays.items()}


def dense(x: torch.Tensor, a: Arrays, name: str) -> torch.Tensor:
    return x @ a[name + "/kernel"] + a[name + "/bias"]


def conv(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None, stride: int = 1, pad: int = 0):
    """Channels-last cross-correlation: x (B, H, W, Cin), kernel (kh, kw, Cin, Cout). Computed as one matmul per
    band of output rows over the gathered (kh * kw * Cin) neighbourhoods (im2col), in bands to bound memory."""
    kh, kw, cin, cout = kernel.shape
    x = torch.nn.functional.pad(x, (0, 0, pad, pad, pad, pad))
    H = (x.shape[1] - kh) // stride + 1
    W = (x.shape[2] - kw) // stride + 1
    band = max(1, (1 << 22) // (x.shape[0] * W * kh * kw * cin))
    out = []
    for top in range(0, H, band):
        rows = range(top, min(top + band, H))
        taps = [
            x[
                :,
                i + stride * rows.start : i + stride * (rows.stop - 1) + 1 : stride,
                j : j + stride * (W - 1) + 1 : stride,
            ]
            for i in range(kh)
            for j in range(kw)
        ]
        out.append(torch.cat(taps, dim=-1) @ kernel.reshape(kh * kw * cin, cout))
    y = torch.cat(out, dim=1)
    return y if bias is None else y + bias


def conv_transpose(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor, stride: int) -> torch.Tensor:
    """`lax.conv_transpose(x, kernel, (s, s), "SAME")` for kernel size k = s: dilate, pad k - 1, correlate."""
    B, h, w, C = x.shape
    k = kernel.shape[0]
    dilated = x.new_zeros(B, (h - 1) * stride + 1, (w - 1) * stride + 1, C)
    dilated[:, ::stride, ::stride] = x
    return conv(dilated, kernel, bias, pad=k - 1)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def source_positions(n_in: int, n_out: int, align_corners: bool, cubic: bool, coords: type) -> np.ndarray:
    """Where each output pixel samples the input, torch's definition evaluated in `coords` precision: with
    align_corners, o (n_in - 1) / (n_out - 1); without, (o + 0.5) n_in / n_out - 0.5, clamped at 0 except for cubic.
    A float32 run of torch computes these in float32 (the scale n_in / n_out rounded, up to 1.5e-5 px off at 448),
    so a float32 comparison evaluates them in float32 too: that rounding is part of what the official code computes,
    not an error of the implementation under test."""
    o = np.arange(n_out).astype(coords)
    if align_corners:
        scale = coords(n_in - 1) / coords(n_out - 1) if n_out > 1 else coords(0)
        return (scale * o).astype(np.float64)
    src = coords(n_in) / coords(n_out) * (o + coords(0.5)) - coords(0.5)
    return (src if cubic else np.maximum(src, coords(0))).astype(np.float64)


def linear_weights(n_in: int, n_out: int, align_corners: bool, coords: type = np.float64) -> np.ndarray:
    """(n_out, n_in) bilinear interpolation weights along one axis."""
    weights = np.zeros((n_out, n_in))
    for o, src in enumerate(source_positions(n_in, n_out, align_corners, False, coords)):
        i0 = min(math.floor(src), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        frac = src - i0
        weights[o, i0] += 1.0 - frac
        weights[o, i1] += frac
    return weights


def cubic_weights(n_in: int, n_out: int, coords: type = np.float64, alpha: float = -0.75) -> np.ndarray:
    """(n_out, n_in) bicubic (Keys, align_corners=False) interpolation weights along one axis."""

    def keys(d: float) -> float:
        d = abs(d)
        if d <= 1:
            return ((alpha + 2) * d - (alpha + 3)) * d * d + 1
        if d < 2:
            return ((alpha * d - 5 * alpha) * d + 8 * alpha) * d - 4 * alpha
        return 0.0

    weights = np.zeros((n_out, n_in))
    for o, src in enumerate(source_positions(n_in, n_out, False, True, coords)):
        base = math.floor(src)
        for tap in range(base - 1, base + 3):
            weights[o, min(max(tap, 0), n_in - 1)] += keys(src - tap)
    return weights


def resample(x: torch.Tensor, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
    """Channels-last separable resampling: (B, h, w, C) with (H, h) and (W, w) weights -> (B, H, W, C)."""
    return torch.einsum("Yy,byxc,Xx->bYXc", torch.from_numpy(rows).to(x.dtype), x, torch.from_numpy(cols).to(x.dtype))


def bilinear(x: torch.Tensor, size: tuple[int, int], align_corners: bool = False, coords: type = np.float64):
    rows = linear_weights(x.shape[1], size[0], align_corners, coords)
    return resample(x, rows, linear_weights(x.shape[2], size[1], align_corners, coords))


def bicubic(x: torch.Tensor, size: tuple[int, int], coords: type = np.float64) -> torch.Tensor:
    return resample(x, cubic_weights(x.shape[1], size[0], coords), cubic_weights(x.shape[2], size[1], coords))


def residual_unit(x: torch.Tensor, a: Arrays, name: str) -> torch.Tensor:
    h = conv(torch.relu(x), a[name + "/conv1/kernel"], None, pad=1)
    return x + conv(torch.relu(h), a[name + "/conv2/kernel"], None, pad=1)


def fusion_block(x: torch.Tensor, skip: torch.Tensor | None, a: Arrays, i: int, coords: type) -> torch.Tensor:
    name = f"dpt/fusion_blocks_{i}"
    if skip is not None:  # block 0 has one unit (the main one); the others a residual unit first, then the main
        if skip.shape != x.shape:
            skip = bilinear(skip, (x.shape[1], x.shape[2]), coords=coords)
        x = x + residual_unit(skip, a, name + "/PreActResidualConvUnit_0")
        x = residual_unit(x, a, name + "/PreActResidualConvUnit_1")
    else:
        x = residual_unit(x, a, name + "/PreActResidualConvUnit_0")
    x = bilinear(x, (2 * x.shape[1], 2 * x.shape[2]), align_corners=True, coords=coords)
    return conv(x, a[name + "/Conv_0/kernel"], a[name + "/Conv_0/bias"])


def body(a: Arrays, features: Features, coords: type = np.float64) -> torch.Tensor:
    """The DPT body: (B, 8h, 8w, 256) channels-last, before the task head; resampling positions in `coords`."""
    dtype = a["dpt/project/kernel"].dtype
    rb = "dpt/reassemble_blocks/"
    levels = []
    for i, (cls_np, patches_np) in enumerate(features):
        cls, patches = torch.from_numpy(cls_np).to(dtype), torch.from_numpy(patches_np).to(dtype)
        x = patches.permute(0, 2, 3, 1)  # (B, h, w, D)
        readout = cls[:, None, None, :].expand_as(x)  # "project" readout: every token beside CLS1
        x = gelu_tanh(dense(torch.cat([x, readout], -1), a, f"{rb}readout_projects_{i}"))
        x = conv(x, a[f"{rb}out_projection_{i}/kernel"], a[f"{rb}out_projection_{i}/bias"])
        if i == 0:  # x4
            x = conv_transpose(x, a[f"{rb}resize_layers_0/kernel"], a[f"{rb}resize_layers_0/bias"], stride=4)
        elif i == 1:  # x2
            x = conv_transpose(x, a[f"{rb}resize_layers_1/kernel"], a[f"{rb}resize_layers_1/bias"], stride=2)
        elif i == 3:  # /2
            x = conv(x, a[f"{rb}resize_layers_3/kernel"], a[f"{rb}resize_layers_3/bias"], stride=2, pad=1)
        levels.append(conv(x, a[f"dpt/convs_{i}/kernel"], None, pad=1))
    x = fusion_block(levels[3], None, a, 0, coords)
    for i, skip in zip((1, 2, 3), (levels[2], levels[1], levels[0]), strict=True):
        x = fusion_block(x, skip, a, i, coords)
    return conv(x, a["dpt/project/kernel"], a["dpt/project/bias"], pad=1)


def segmentation_logits(a: Arrays, body_out: torch.Tensor, size: tuple[int, int], coords: type = np.float64):
    """ADE20K logits (B, 150, H, W): the per-pixel Dense head, resized bilinearly."""
    return bilinear(dense(body_out, a, "pixel_segmentation"), size, coords=coords).permute(0, 3, 1, 2).numpy()


def depth_metres(a: Arrays, body_out: torch.Tensor, size: tuple[int, int], coords: type = np.float64):
    """(B, 1, H, W): bins = relu(logits) + min_depth, normalised to sum 1, expectation over the bin centres (256
    evenly spaced from 0.001 to 10 m), on the decoder grid; then resized bilinearly."""
    weights = torch.relu(dense(body_out, a, "pixel_depth_classif")) + 0.001
    probs = weights / weights.sum(-1, keepdim=True)
    centres = torch.from_numpy(np.linspace(0.001, 10.0, 256)).to(probs.dtype)
    return bilinear(probs @ centres[:, None], size, coords=coords).permute(0, 3, 1, 2).numpy()


def normals_raw(a: Arrays, body_out: torch.Tensor, size: tuple[int, int], coords: type = np.float64):
    """The decoder's 3 raw channels resized bilinearly, (B, 3, H, W) (the official `Decoder.forward`)."""
    return bilinear(dense(body_out, a, "pixel_normals"), size, coords=coords).permute(0, 3, 1, 2).numpy()


def unit_normals(a: Arrays, body_out: torch.Tensor, size: tuple[int, int], coords: type = np.float64):
    """The notebook: L2-normalise on the decoder grid, bicubic to `size`, L2-normalise again; (B, 3, H, W)."""

    def normalise(x: torch.Tensor) -> torch.Tensor:
        return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    raw = dense(body_out, a, "pixel_normals")
    return normalise(bicubic(normalise(raw), size, coords)).permute(0, 3, 1, 2).numpy()
