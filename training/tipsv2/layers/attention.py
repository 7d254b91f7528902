"""Multi-head self-attention of the image tower (DINOv2 `Attention`: fused `qkv`, `proj`, scale head_dim^-0.5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        # (B, N, 3C) -> (3, B, heads, N, head_dim)
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        projected: torch.Tensor = self.proj(out.transpose(1, 2).reshape(B, N, C))
        return projected

    def value_path(self, x: torch.Tensor) -> torch.Tensor:
        """MaskCLIP's "values trick": the value projection alone, with no attention mixing between tokens."""
        C = x.shape[-1]
        values: torch.Tensor = self.proj(self.qkv(x)[..., 2 * C :])
        return values
