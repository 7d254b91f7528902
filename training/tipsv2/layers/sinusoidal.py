"""Fixed sinusoidal positions of the text tower: sin in the first half, cos in the second (not interleaved).

Timescales run geometrically from 1 to 10,000 with increment log(1e4) / (D/2 - 1), computed in float32 exactly as
`PositionalEmbedding` in the official `pytorch/text_encoder.py`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sinusoidal_positions(seq_len: int, dim: int) -> torch.Tensor:
    """Returns the (seq_len, dim) float32 position table."""
    num_timescales = dim // 2
    increment = torch.log(torch.tensor(10_000.0)) / max(num_timescales - 1, 1)
    inv_timescales = torch.exp(torch.arange(num_timescales, dtype=torch.float32) * -increment)
    scaled = torch.arange(seq_len, dtype=torch.float32)[:, None] * inv_timescales[None, :]
    signal = torch.cat((torch.sin(scaled), torch.cos(scaled)), dim=1)
    return F.pad(signal, (0, dim % 2))


def embedding_scale(dim: int) -> float:
    """Token embeddings are multiplied by sqrt(D) before positions are added (`scale_sqrt_depth=True`)."""
    return float(dim**0.5)  # the official code's own spelling, bit-identical
