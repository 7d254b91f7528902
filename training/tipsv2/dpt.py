"""The DPT decoders of TIPSv2: semantic segmentation, depth and surface normals on intermediate image layers.

Computes what the official `pytorch/decoders.py` (google-deepmind/tips HEAD 4db271d) computes, with its parameter
names, so its `state_dict` keys are ours. The input is one (CLS1, patch map) pair per layer of the variant's
`dpt_layers`, each taken after the image tower's final norm (`VisionTransformer.intermediate_features`):

1. Reassemble, per level i: concatenate every patch token with CLS1 and project back to D ("project" readout, GELU
   with the tanh approximation, as JAX's default), a 1x1 conv to (D/8, D/4, D/2, D)[i] channels, then resize by
   x4 and x2 (transposed convs with stride = kernel), x1, and /2 (a 3x3 stride-2 conv).
2. A 3x3 conv (no bias) per level to 256 channels.
3. Fusion from the deepest level up: pre-activation residual units, each block upsampling x2 (bilinear,
   align_corners=True) then a 1x1 conv; the shallower level is added through its own residual unit (resized
   bilinearly first when an odd patch grid makes the sizes differ).
4. A 3x3 conv `project` (no activation), then a per-pixel linear head: the output grid is 8x the patch grid.

Heads: segmentation gives 150 ADE20K logits; depth classifies 256 bins over 0.001-10 m and returns the expectation
`sum(p_k * center_k)` with `p = (relu(logits) + 0.001) / sum(...)`; normals gives 3 raw channels (the notebook then
normalises, upsamples bicubically and normalises again: `unit_normals`). Outputs are resized bilinearly
(align_corners=False) to `image_size` when one is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from training.tipsv2.configs import get_model_config
from training.tipsv2.heads import (
    DEPTH_BINS,
    FUSION_CHANNELS,
    MAX_DEPTH_M,
    MIN_DEPTH_M,
    OUT_CHANNELS,
    Task,
    check_task,
    reassemble_channels,
)

# One (CLS1 (B, D), patch map (B, D, h, w)) pair per intermediate layer, shallow to deep.
LayerInputs = Sequence[tuple[torch.Tensor, torch.Tensor]]


class PreActResidualConvUnit(nn.Module):
    """x + conv2(relu(conv1(relu(x)))), 3x3 convs without bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual: torch.Tensor = self.conv2(F.relu(self.conv1(F.relu(x))))
        return x + residual


class FeatureFusionBlock(nn.Module):
    """(x [+ residual_unit(skip)]) -> main_unit -> x2 bilinear (align_corners=True) -> 1x1 conv."""

    def __init__(self, channels: int, has_residual: bool) -> None:
        super().__init__()
        if has_residual:
            self.residual_unit = PreActResidualConvUnit(channels)
        self.main_unit = PreActResidualConvUnit(channels)
        self.out_conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            if skip.shape != x.shape:  # odd patch grids: the /2 level rounds up, so upsampled sizes run one ahead
                skip = F.interpolate(skip, size=x.shape[2:], mode="bilinear", align_corners=False)
            x = x + self.residual_unit(skip)
        x = F.interpolate(self.main_unit(x), scale_factor=2, mode="bilinear", align_corners=True)
        out: torch.Tensor = self.out_conv(x)
        return out


class ReassembleBlocks(nn.Module):
    """Per level: "project" readout with CLS1, 1x1 conv to the level's width, resize x4, x2, x1 or /2."""

    def __init__(self, embed_dim: int, channels: Sequence[int]) -> None:
        super().__init__()
        self.out_projections = nn.ModuleList(nn.Conv2d(embed_dim, c, 1) for c in channels)
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(channels[0], channels[0], kernel_size=4, stride=4),
                nn.ConvTranspose2d(channels[1], channels[1], kernel_size=2, stride=2),
                nn.Identity(),
                nn.Conv2d(channels[3], channels[3], 3, stride=2, padding=1),
            ]
        )
        self.readout_projects = nn.ModuleList(nn.Linear(2 * embed_dim, embed_dim) for _ in channels)

    def forward(self, layers: LayerInputs) -> list[torch.Tensor]:
        out = []
        for i, (cls, patches) in enumerate(layers):
            B, D, h, w = patches.shape
            tokens = patches.flatten(2).transpose(1, 2)
            readout = cls[:, None, :].expand(-1, tokens.shape[1], -1)
            tokens = F.gelu(self.readout_projects[i](torch.cat([tokens, readout], dim=-1)), approximate="tanh")
            x = tokens.transpose(1, 2).reshape(B, D, h, w)
            out.append(self.resize_layers[i](self.out_projections[i](x)))
        return out


class DPTHead(nn.Module):
    """Reassemble, project each level to `channels`, fuse deepest first, then a 3x3 `project` conv."""

    def __init__(self, embed_dim: int, channels: int = FUSION_CHANNELS) -> None:
        super().__init__()
        widths = reassemble_channels(embed_dim)
        self.reassemble = ReassembleBlocks(embed_dim, widths)
        self.convs = nn.ModuleList(nn.Conv2d(width, channels, 3, padding=1, bias=False) for width in widths)
        self.fusion_blocks = nn.ModuleList(FeatureFusionBlock(channels, has_residual=i > 0) for i in range(4))
        self.project = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, layers: LayerInputs) -> torch.Tensor:
        levels = [conv(x) for conv, x in zip(self.convs, self.reassemble(layers), strict=True)]
        x = self.fusion_blocks[0](levels[3])
        for block, skip in zip(self.fusion_blocks[1:], reversed(levels[:3]), strict=True):
            x = block(x, skip)
        out: torch.Tensor = self.project(x)
        return out


class DenseDecoder(nn.Module):
    """The shared DPT body plus a per-pixel linear head; `forward` gives the raw head output (B, C, 8h, 8w)."""

    task: Task

    def __init__(self, embed_dim: int, out_channels: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.dpt = DPTHead(embed_dim)
        self.head = nn.Linear(FUSION_CHANNELS, out_channels)

    def head_output(self, layers: LayerInputs) -> torch.Tensor:
        if len(layers) != 4:
            raise ValueError(f"a DPT decoder reads 4 intermediate layers, got {len(layers)}")
        x: torch.Tensor = self.dpt(layers)
        out: torch.Tensor = self.head(x.permute(0, 2, 3, 1))
        return out.permute(0, 3, 1, 2)

    def forward(self, layers: LayerInputs, image_size: tuple[int, int] | None = None) -> torch.Tensor:
        return resize(self.head_output(layers), image_size)


class SegmentationDecoder(DenseDecoder):
    """ADE20K logits (B, 150, H, W)."""

    task: Task = "segmentation"

    def __init__(self, embed_dim: int) -> None:
        super().__init__(embed_dim, OUT_CHANNELS["segmentation"])


class DepthDecoder(DenseDecoder):
    """Depth in metres (B, 1, H, W): the expectation over 256 bins, computed on the decoder grid, then resized."""

    task: Task = "depth"

    def __init__(self, embed_dim: int) -> None:
        super().__init__(embed_dim, DEPTH_BINS)

    def forward(self, layers: LayerInputs, image_size: tuple[int, int] | None = None) -> torch.Tensor:
        # At least float32 here: in half precision the bin spacing (0.04 m) and the sum over 256 bins would round.
        logits = self.head_output(layers)
        weights = F.relu(logits.to(torch.promote_types(logits.dtype, torch.float32))) + MIN_DEPTH_M
        probs = weights / weights.sum(dim=1, keepdim=True)
        depth = torch.einsum("bchw,c->bhw", probs, bin_centers(probs.dtype, probs.device))
        return resize(depth[:, None], image_size)


class NormalsDecoder(DenseDecoder):
    """Raw surface-normal channels (B, 3, H, W), not unit length: `unit_normals` post-processes as the notebook."""

    task: Task = "normals"

    def __init__(self, embed_dim: int) -> None:
        super().__init__(embed_dim, OUT_CHANNELS["normals"])


DECODERS: dict[Task, Callable[[int], DenseDecoder]] = {  # task -> constructor taking the encoder width
    "segmentation": SegmentationDecoder,
    "depth": DepthDecoder,
    "normals": NormalsDecoder,
}


def create_decoder(variant: str, task: str, device: str | torch.device | None = None) -> DenseDecoder:
    """The `task` decoder for a registered variant's width (`device="meta"` builds without allocating)."""
    cfg = get_model_config(variant)
    if not cfg.vision_cfg.dpt_layers:
        raise ValueError(f"{cfg.name} has no DPT layers in its config")
    with torch.device(device or "cpu"):
        return DECODERS[check_task(task)](cfg.embed_dim)


def bin_centers(dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """The 256 depth-bin centres, evenly spaced from 0.001 to 10 m. Computed in the working dtype (the official
    buffer is float32 `linspace`, which a float32 run equals; a float64 run gets exact centres), and stored
    nowhere: they are no weights, and the checkpoints do not hold them."""
    return torch.linspace(MIN_DEPTH_M, MAX_DEPTH_M, DEPTH_BINS, dtype=dtype, device=device)


def resize(x: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Bilinear resize with align_corners=False (the official heads' final step); None keeps the decoder grid."""
    if size is None or tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def unit_normals(raw: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """The notebook's normals post-processing: L2-normalise the decoder-grid output, upsample bicubically
    (align_corners=False), L2-normalise again. (B, 3, h, w) -> (B, 3, H, W) unit vectors."""
    normals = F.normalize(raw, dim=1)
    if size is not None and tuple(normals.shape[-2:]) != tuple(size):
        normals = F.interpolate(normals, size=size, mode="bicubic", align_corners=False)
    return F.normalize(normals, dim=1)
