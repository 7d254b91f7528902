"""Feed-forward layers of the image tower: GELU MLP (B/L/So400m) and DINOv2's fused SwiGLU (g)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc2(F.gelu(self.fc1(x)))
        return out


def swiglu_hidden_dim(hidden_dim: int) -> int:
    """DINOv2 keeps two thirds of the MLP width, rounded up to a multiple of 8 (6144 -> 4096 for g/14)."""
    return (int(hidden_dim * 2 / 3) + 7) // 8 * 8


class SwiGLUFFNFused(nn.Module):
    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        hidden = swiglu_hidden_dim(hidden_dim)
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        out: torch.Tensor = self.w3(F.silu(x1) * x2)
        return out
