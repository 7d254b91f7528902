"""Process-group set-up for `torchrun` and the few collectives the losses need.

One code path for every scale: a plain `python` run is a world of one (no process group, every collective is the
identity); under `torchrun` (one node or a Kubernetes Indexed Job over several) the rendezvous variables
RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT select gloo on CPU and NCCL on GPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def pick_device(requested: str, local_rank: int) -> torch.device:
    """`auto` -> this process's GPU when CUDA is available, else CPU."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but CUDA is not available")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    if requested != "cpu":
        raise ValueError(f"unknown device {requested!r}: use auto, cpu or cuda")
    return torch.device("cpu")


def init_distributed(device: str = "auto") -> DistEnv:
    """Joins the `torchrun` process group if launched by it; otherwise a single-process environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank_ = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world > 1 and not is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(rank_, world, local_rank, dev)


def shutdown() -> None:
    if is_initialized():
        dist.destroy_process_group()


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All ranks' `x` concatenated along dim 0, rank order; gradients flow back to each rank's own rows."""
    if world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    gather: Callable[[torch.Tensor], tuple[torch.Tensor, ...]] = all_gather  # untyped in torch
    return torch.cat(gather(x), dim=0)


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (a new tensor; no gradient)."""
    if world_size() == 1:
        return x
    x = x.detach().clone()
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def row_offset(local_rows: int) -> int:
    """Index of this rank's first row in a `gather_with_grad` result (equal row counts on every rank)."""
    return rank() * local_rows
