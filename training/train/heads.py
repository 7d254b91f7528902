"""The DINO / iBOT projection head (DINOv2 `layers/dino_head.py`).

MLP (in -> hidden -> hidden -> bottleneck, GELU) -> L2 normalisation -> a bias-free linear map onto K prototypes
whose rows are unit vectors. DINOv2 writes that last layer with `weight_norm` and `weight_g` frozen at 1, which is
exactly row-normalising one plain weight; the plain form keeps the EMA and the checkpoint free of parametrisations.
The logits are therefore cosines in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DINOHead(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 2048, bottleneck_dim: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, bottleneck_dim),
        )
        self.last_layer = nn.Parameter(torch.empty(out_dim, bottleneck_dim))

    def init_weights(self, generator: torch.Generator | None = None) -> DINOHead:
        for module in self.mlp:
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02, a=-0.04, b=0.04, generator=generator)
                nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.last_layer, std=0.02, a=-0.04, b=0.04, generator=generator)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in_dim) -> (..., out_dim) cosine logits."""
        x = F.normalize(self.mlp(x), dim=-1, eps=1e-6)
        return F.linear(x, F.normalize(self.last_layer, dim=-1, eps=1e-6))
