"""The AdaLink module: a residual low-rank two-layer map on the token sequence the first transformer block sees.

    x' = x + up(act(down(x)))        down: D -> r (weight (r, D)),  up: r -> D (weight (D, r)), no biases

`up` starts at zero, so an untrained adapter returns its input unchanged, bit for bit: `up(h)` is exactly zero and
`x + 0 == x` in floating point. Training therefore starts at the base model and moves away from it only as far as
the task asks. `down` starts small and random (LoRA's choice for its `A`), so the gradient of `up` is not zero at
step 0.

The activation between the two layers is an option, from the one table every runtime uses
(`training.contracts.activations`): each maps 0 to 0, which the serving bank relies on when it zero-pads adapters of
different ranks into one tensor.

No bias on either layer: a bias on `up` would shift every token by a constant even where the adapter has learnt
nothing, and the file format (and the serving stages) carry exactly the two matrices.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from training.contracts.activations import check, torch_activations

ACTIVATIONS = torch_activations()


class AdaLink(nn.Module):
    """One modality's adapter: (..., D) -> (..., D)."""

    def __init__(self, dim: int, rank: int, activation: str = "gelu_tanh") -> None:
        super().__init__()
        check(activation)
        if not 1 <= rank <= dim:
            raise ValueError(f"rank must lie in [1, {dim}] (the width), got {rank}")
        self.dim, self.rank, self.activation = dim, rank, activation
        self.down = nn.Linear(dim, rank, bias=False)
        self.up = nn.Linear(rank, dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """`down` ~ U(±1/sqrt(D)) (nn.Linear's own bound), `up` = 0: the adapter starts as the identity map."""
        bound = 1.0 / math.sqrt(self.dim)
        with torch.no_grad():
            self.down.weight.uniform_(-bound, bound, generator=generator)
            self.up.weight.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.up(ACTIVATIONS[self.activation](self.down(x)))
        return out

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(down (r, D), up (D, r)): the two matrices as the adapter file stores them."""
        return self.down.weight.detach(), self.up.weight.detach()

    @classmethod
    def from_tensors(cls, down: torch.Tensor, up: torch.Tensor, activation: str) -> AdaLink:
        rank, dim = down.shape
        if tuple(up.shape) != (dim, rank):
            raise ValueError(f"up has shape {tuple(up.shape)}, expected {(dim, rank)} for down {(rank, dim)}")
        adapter = cls(dim, rank, activation)
        with torch.no_grad():
            adapter.down.weight.copy_(down)
            adapter.up.weight.copy_(up)
        return adapter

    def extra_repr(self) -> str:
        return f"dim={self.dim}, rank={self.rank}, activation={self.activation}"


def apply_mixed(
    x: torch.Tensor, down: torch.Tensor, up: torch.Tensor, slots: torch.Tensor, activation: str = "identity"
) -> torch.Tensor:
    """Many adapters in one batch: row b uses adapter `slots[b]` of the stacked banks.

    x (B, T, D); down (S, R, D); up (S, D, R); slots (B,) int. One gather of each row's matrices and two batched
    matmuls, whatever mix of adapters the batch holds: the serving bank's arithmetic (slot 0 all zeros = the base).
    """
    hidden = ACTIVATIONS[activation](torch.bmm(x, down[slots].transpose(1, 2)))
    return x + torch.bmm(hidden, up[slots].transpose(1, 2))
