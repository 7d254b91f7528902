"""The TIPSv2 image tower: a DINOv2-style ViT with two CLS tokens.

Token order is [CLS1, CLS2, patch_1 … patch_N]. CLS2 is DINOv2's single register token, reused; the positional table
covers CLS1 and the patches only and is added before CLS2 is inserted, so CLS2 carries no position. Outputs (CLS1,
CLS2, patch tokens) all come after the final LayerNorm. Parameter names equal the official `pytorch/image_encoder.py`
built with `block_chunks=0`, so the official `.npz` loads strictly.

The forward pass is split where serving splits it: `embed` (patch embedding, positions, CLS tokens: what the
AdaLink adapter stage owns) and `trunk` (the blocks and final norm: what is compiled once into an engine).
`trunk_with_layers` is the same pass keeping the intermediate states the DPT heads read; `trunk` is untouched by
it, so embeddings cost what they did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

from training.tipsv2.configs import VisionCfg
from training.tipsv2.layers import Block, PatchEmbed


class ImageFeatures(NamedTuple):
    cls1: torch.Tensor  # (B, D), aligned with alt-text; the demos' image embedding
    cls2: torch.Tensor  # (B, D), aligned with synthetic captions; better for dense tasks
    patch_tokens: torch.Tensor  # (B, H/14 * W/14, D), row-major


class LayerFeatures(NamedTuple):
    """One intermediate layer as the DPT heads read it (the official `get_intermediate_layers(norm=True)`)."""

    cls1: torch.Tensor  # (B, D), the first CLS token after the final norm
    patch_map: torch.Tensor  # (B, D, H/14, W/14), the patch tokens after the final norm


class VisionTransformer(nn.Module):
    def __init__(self, cfg: VisionCfg) -> None:
        super().__init__()
        self.cfg = cfg
        D = cfg.embed_dim
        self.num_prefix_tokens = 1 + cfg.num_register_tokens
        # Registration order follows DINOv2's `DinoVisionTransformer`, so `state_dict()` lists the keys in the
        # official order: cls_token, pos_embed, register_tokens, mask_token, patch_embed.*, blocks.*, norm.*.
        self.patch_embed = PatchEmbed(cfg.patch_size, D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.pos_grid**2 + 1, D))
        self.register_tokens = nn.Parameter(torch.zeros(1, cfg.num_register_tokens, D))
        self.blocks = nn.ModuleList(
            Block(D, cfg.num_heads, cfg.mlp_hidden_dim, cfg.ffn_layer, cfg.layer_norm_eps, cfg.init_values)
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(D, eps=cfg.layer_norm_eps)
        self.head = nn.Identity()
        self.mask_token = nn.Parameter(torch.zeros(1, D))

    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """DINOv2's initialisation: truncated normal (std 0.02) for weights and positions, tiny CLS tokens."""
        for name, param in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(param)
            elif name.endswith(".gamma"):
                nn.init.constant_(param, self.cfg.init_values)
            elif "norm" in name:
                nn.init.ones_(param)
            elif name in ("cls_token", "register_tokens"):
                nn.init.normal_(param, std=1e-6, generator=generator)
            elif name == "mask_token":
                nn.init.zeros_(param)
            else:
                nn.init.trunc_normal_(param, std=0.02, a=-0.04, b=0.04, generator=generator)

    def interpolate_pos_encoding(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """Positional table for a grid_h x grid_w patch grid: (1, 1 + grid_h * grid_w, D).

        Bilinear with antialiasing and an explicit output size, as the official code (not DINOv2's bicubic).
        At the native grid this is the stored table itself.
        """
        native = self.cfg.pos_grid
        if grid_h == native and grid_w == native:
            return self.pos_embed
        D = self.pos_embed.shape[-1]
        patch_pos = self.pos_embed[:, 1:].float().reshape(1, native, native, D).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(patch_pos, size=(grid_h, grid_w), mode="bilinear", antialias=True)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, D).to(self.pos_embed.dtype)
        return torch.cat((self.pos_embed[:, :1], patch_pos), dim=1)

    def embed(self, pixels: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> the token sequence the first block sees, (B, 2 + N, D).

        `masks` (B, N) bool replaces those patch embeddings by the mask token before positions are added (iBOT).
        """
        B, _, H, W = pixels.shape
        x = self.patch_embed(pixels)
        if masks is not None:
            x = torch.where(masks[..., None], self.mask_token.to(x.dtype)[None], x)
        x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        x = x + self.interpolate_pos_encoding(H // self.cfg.patch_size, W // self.cfg.patch_size)
        return torch.cat((x[:, :1], self.register_tokens.expand(B, -1, -1), x[:, 1:]), dim=1)

    def trunk(self, tokens: torch.Tensor) -> torch.Tensor:
        """The blocks and the final norm: (B, T, D) -> (B, T, D)."""
        for block in self.blocks:
            tokens = block(tokens)
        out: torch.Tensor = self.norm(tokens)
        return out

    def trunk_with_dense(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (normal output, MaskCLIP value-path output) sharing blocks 0…L-2: both (B, T, D)."""
        out, hidden = self.trunk_with_hidden(tokens)
        return out, self.dense_from_hidden(hidden)

    def trunk_with_hidden(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (normal output, the last block's input): serving runs the dense value path from the latter, and
        only for the rows that ask for it."""
        for block in self.blocks[:-1]:
            tokens = block(tokens)
        out: torch.Tensor = self.norm(self.blocks[-1](tokens))
        return out, tokens

    def dense_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """The MaskCLIP value path of the last block over its input `hidden` (from `trunk_with_hidden`), normed."""
        last = cast(Block, self.blocks[-1])  # ModuleList indexing is typed as Module
        dense: torch.Tensor = self.norm(last.forward_value_path(hidden))
        return dense

    def trunk_with_layers(self, tokens: torch.Tensor, layers: Sequence[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The trunk's output and, for each block index in `layers`, that block's output passed through the final
        norm (as the official `get_intermediate_layers(norm=True)`): all (B, T, D). The blocks run once; the extra
        cost is one LayerNorm per layer that is not the last block (whose normed output is the trunk's output)."""
        last = len(self.blocks) - 1
        if not layers or any(not 0 <= i <= last for i in layers):
            raise ValueError(f"layers must be block indices in [0, {last}], got {list(layers)}")
        taken: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks):
            tokens = block(tokens)
            if i in layers and i != last:
                taken[i] = self.norm(tokens)
        out = self.norm(tokens)
        return out, [out if i == last else taken[i] for i in layers]

    def layer_features(self, states: Sequence[torch.Tensor], grid: tuple[int, int]) -> list[LayerFeatures]:
        """Normed token states (B, T, D) -> (CLS1, patch map (B, D, h, w)) pairs, the DPT decoders' input."""
        h, w = grid
        p = self.num_prefix_tokens
        return [LayerFeatures(x[:, 0], x[:, p:].transpose(1, 2).reshape(x.shape[0], -1, h, w)) for x in states]

    def intermediate_features(self, pixels: torch.Tensor, layers: Sequence[int] | None = None) -> list[LayerFeatures]:
        """(B, 3, H, W) in [0, 1] -> the DPT input at `layers` (default: the config's `dpt_layers`)."""
        layers = self.cfg.dpt_layers if layers is None else layers
        _, states = self.trunk_with_layers(self.embed(pixels), layers)
        P = self.cfg.patch_size
        return self.layer_features(states, (pixels.shape[-2] // P, pixels.shape[-1] // P))

    def split(self, x: torch.Tensor) -> ImageFeatures:
        p = self.num_prefix_tokens
        return ImageFeatures(x[:, 0], x[:, 1], x[:, p:])

    def forward(self, pixels: torch.Tensor, masks: torch.Tensor | None = None) -> ImageFeatures:
        return self.split(self.trunk(self.embed(pixels, masks)))

    def dense_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """MaskCLIP value-path patch features of the last block, (B, N, D): the zero-shot segmentation features."""
        _, dense = self.trunk_with_dense(self.embed(pixels))
        return dense[:, self.num_prefix_tokens :]
