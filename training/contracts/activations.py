"""The activations an AdaLink adapter may use between its two maps: one table for every runtime.

Each maps 0 to 0, so the serving banks may zero-pad adapters of different ranks into one tensor without changing
anything. GELU is the tanh form, computable in numpy without scipy. The numpy forms are here; the torch forms are
built on first use, so that importing this module needs no torch (the numpy Triton models and the gateway).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

NAMES = ("identity", "relu", "gelu_tanh", "silu")
_SQRT_2_OVER_PI = np.float32(0.7978845608028654)
_GELU_CUBIC = np.float32(0.044715)


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.float32(0.5) * x * (np.float32(1.0) + np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x * x * x)))
    return out


NUMPY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda x: x,
    "relu": lambda x: np.maximum(x, np.float32(0.0)),
    "gelu_tanh": _gelu_tanh,
    "silu": lambda x: x / (np.float32(1.0) + np.exp(-x)),
}


def torch_activations() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The same table in torch (imports torch)."""
    import torch
    import torch.nn.functional as F

    return {
        "identity": lambda h: h,
        "relu": torch.relu,
        "gelu_tanh": lambda h: F.gelu(h, approximate="tanh"),
        "silu": F.silu,
    }


def check(name: str) -> str:
    """`name` if it is one of the activations; ValueError otherwise."""
    if name not in NAMES:
        raise ValueError(f"activation {name!r} is not one of {', '.join(NAMES)}")
    return name
