"""Pre-LN block of the text tower (official `ResidualAttentionBlock`), batch-first.

Parameter names equal `nn.MultiheadAttention`'s (`attn.in_proj_weight`, `attn.out_proj`), but the forward pass is
plain scaled-dot-product attention so that the tower exports to ONNX under `no_grad` (the legacy exporter cannot
export `nn.MultiheadAttention`'s fast path). Padded keys get the most negative float instead of -inf: identical
results whenever one key is valid, and no NaN when none is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TextAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        """x: (B, L, D); key_bias: (B, 1, 1, L) additive, 0 for tokens and a huge negative value for padding."""
        B, L, D = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.reshape(B, L, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=key_bias)
        projected: torch.Tensor = self.out_proj(out.transpose(1, 2).reshape(B, L, D))
        return projected


class TextMlp(nn.Module):
    """`c_fc` -> ReLU -> `c_proj`, with the official double masking of padded positions."""

    def __init__(self, dim: int, mlp_dim: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(dim, mlp_dim)
        self.c_proj = nn.Linear(mlp_dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.c_fc(x)) * mask[..., None]
        out: torch.Tensor = self.c_proj(h) * mask[..., None]
        return out


class ResidualAttentionBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_dim: int, eps: float) -> None:
        super().__init__()
        self.attn = TextAttention(dim, num_heads)
        self.ln_1 = nn.LayerNorm(dim, eps=eps)
        self.mlp = TextMlp(dim, mlp_dim)
        self.ln_2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), key_bias)
        out: torch.Tensor = x + self.mlp(self.ln_2(x), mask)
        return out


def key_padding_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, L) float mask, 1 for tokens -> (B, 1, 1, L) additive attention bias in `dtype`.

    A select rather than `(1 - mask) * min`: that product, computed in the mask's float32, turns float64's minimum
    into -inf and 0 * -inf into NaN.
    """
    zero = torch.zeros((), dtype=dtype, device=mask.device)
    return torch.where(mask[:, None, None, :] > 0, zero, torch.finfo(dtype).min)
