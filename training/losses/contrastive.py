"""Softmax image-text contrastive loss (CLIP / InfoNCE, both directions) with a learned temperature.

TIPSv2 trains two of these: CLS1 against web alt-text and CLS2 against a synthetic caption. The logits are
cos(image, text) / temperature over the *global* batch: each rank gathers every rank's embeddings (with gradients)
and scores its own rows against all columns, open_clip's `local_loss` + `gather_with_grad`. With DDP averaging
gradients, N processes then optimise exactly the single-process loss of the same global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.train.distributed import gather_with_grad, row_offset


class ContrastiveLoss(nn.Module):
    def __init__(self, name: str = "contrastive", weight: float = 1.0) -> None:
        super().__init__()
        self.name, self.weight = name, weight

    def forward(self, image: torch.Tensor, text: torch.Tensor, temperature: torch.Tensor) -> dict[str, torch.Tensor]:
        """`image`, `text`: (B, D) paired rows of this rank; `temperature`: scalar > 0."""
        image = F.normalize(image.float(), dim=-1)
        text = F.normalize(text.float(), dim=-1)
        all_image, all_text = gather_with_grad(image), gather_with_grad(text)
        labels = torch.arange(image.shape[0], device=image.device) + row_offset(image.shape[0])
        image_to_text = image @ all_text.T / temperature  # (B, world * B)
        text_to_image = text @ all_image.T / temperature
        loss = (F.cross_entropy(image_to_text, labels) + F.cross_entropy(text_to_image, labels)) / 2
        return {f"{self.name}_loss": self.weight * loss}
