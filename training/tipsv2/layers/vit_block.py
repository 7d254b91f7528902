"""Pre-LN transformer block of the image tower (DINOv2 `Block`): x + ls1(attn(norm1(x))), x + ls2(mlp(norm2(x)))."""

from __future__ import annotations

import torch
from torch import nn

from training.tipsv2.layers.attention import Attention
from training.tipsv2.layers.layer_scale import LayerScale
from training.tipsv2.layers.mlp import Mlp, SwiGLUFFNFused


class Block(nn.Module):
    def __init__(
        self, dim: int, num_heads: int, mlp_hidden_dim: int, ffn_layer: str, eps: float, init_values: float
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        if ffn_layer == "mlp":
            self.mlp: nn.Module = Mlp(dim, mlp_hidden_dim)
        elif ffn_layer == "swiglufused":
            self.mlp = SwiGLUFFNFused(dim, mlp_hidden_dim)
        else:
            raise ValueError(f"unknown ffn_layer {ffn_layer!r}")
        self.ls2 = LayerScale(dim, init_values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        out: torch.Tensor = x + self.ls2(self.mlp(self.norm2(x)))
        return out

    def forward_value_path(self, x: torch.Tensor) -> torch.Tensor:
        """The block with attention replaced by its value path (MaskCLIP), as the official zero-shot notebook does."""
        x = x + self.ls1(self.attn.value_path(self.norm1(x)))
        out: torch.Tensor = x + self.ls2(self.mlp(self.norm2(x)))
        return out
