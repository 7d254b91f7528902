"""A checksum of a module's weights: the proof that adapter training leaves the base model untouched."""

from __future__ import annotations

import hashlib

import torch
from torch import nn


def state_checksum(module: nn.Module) -> str:
    """sha256 over every entry of `state_dict()` (name, dtype, shape and raw bytes), in name order.

    Any change to any parameter or persistent buffer, even of one bit, changes the checksum. Cheap enough to take
    before and after every training run (one pass over the weights).
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
