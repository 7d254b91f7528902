"""KoLeo regulariser (DINOv2 `koleo_loss.py`; Sablayrolles et al. 2019): spreads embeddings out uniformly.

L = -mean_i log(||x_i - x_nn(i)|| + eps) over L2-normalised features, nn(i) the nearest other row (largest dot
product). Neighbours are searched over the global batch (rows gathered from every rank, with gradients), so the
loss of a global batch does not depend on how it is split over processes; each rank averages over its own rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.train.distributed import gather_with_grad, row_offset


class KoLeoLoss(nn.Module):
    def __init__(self, weight: float = 0.1, eps: float = 1e-8) -> None:
        super().__init__()
        self.weight, self.eps = weight, eps

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """`features` (V, B, D): one KoLeo term per view (DINOv2 applies it per global crop), averaged."""
        terms = [self._one_view(view) for view in features]
        return {"koleo_loss": self.weight * torch.stack(terms).mean()}

    def _one_view(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(x.float(), dim=-1, eps=self.eps)
        everyone = gather_with_grad(x)
        B = x.shape[0]
        own = torch.arange(B, device=x.device) + row_offset(B)
        with torch.no_grad():
            similarity = x @ everyone.T  # (B, world * B)
            similarity[torch.arange(B, device=x.device), own] = -torch.inf  # a row is not its own neighbour
            neighbour = similarity.argmax(dim=1)
        distance = F.pairwise_distance(x, everyone[neighbour], eps=self.eps)
        return -torch.log(distance + self.eps).mean()
