"""The exported graphs: each tower's transformer trunk, without its embedding layer.

The embedding layer (token table, patch projection, positions, CLS tokens) is owned by the adapter stage that runs
ahead of the trunk in Triton, so an AdaLink adapter changes only the trunk's *input*: the trunk is compiled once and
serves every tenant.
"""

from __future__ import annotations

import torch
from torch import nn

from training.contracts.served import OUTPUTS, TRUNK_INPUTS
from training.tipsv2.model import TIPSv2

TEXT_INPUTS, TEXT_OUTPUTS = TRUNK_INPUTS["text"], OUTPUTS["text"]  # the names every trunk, ONNX or torch, uses
IMAGE_INPUTS, IMAGE_OUTPUTS = TRUNK_INPUTS["image"], OUTPUTS["image"]


class TextTrunk(nn.Module):
    """(B, L, D) embedded tokens + (B, L) float mask -> (B, D) pooled text embedding."""

    def __init__(self, model: TIPSv2) -> None:
        super().__init__()
        self.text = model.text

    def forward(self, embeddings: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        return self.text.trunk(embeddings, token_mask)


class ImageTrunk(nn.Module):
    """(B, 2 + N, D) tokens -> CLS1, CLS2, patch tokens and MaskCLIP dense tokens (all after the final norm)."""

    def __init__(self, model: TIPSv2) -> None:
        super().__init__()
        self.visual = model.visual

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out, dense = self.visual.trunk_with_dense(tokens)
        p = self.visual.num_prefix_tokens
        return out[:, 0], out[:, 1], out[:, p:], dense[:, p:]
