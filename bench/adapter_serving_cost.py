"""What per-tenant adapters cost to serve in one batch that mixes many tenants, on this machine's CPU.

The method of `../shared/bench/gpu_anchors.py` (whose H200 figures are in `../shared/reference/gpu_anchors.md`):
a pre-LN text encoder over input embeddings, one batch whose rows belong to `--tenants` different tenants, and
the throughput of each way of giving every row its own tenant's adapter, relative to the base encoder alone:

- `adalink`: the input-side adapter, once per request, ahead of the shared encoder: one gather of each row's
  matrices and two batched matmuls (`training.adalink.module.apply_mixed`, the serving bank's arithmetic);
- `lora_qkv_proj`: LoRA on the fused qkv and the output projection of every layer, S-LoRA style (a gather and two
  batched matmuls per adapted projection per layer);
- `full_finetune`: every tenant has its own encoder weights, so the batch runs as one forward per tenant over its
  rows. One weight copy is reused for all tenants here, so this is a lower bound (no extra weight traffic).

Presets: `cpu` (D=256, 4 layers, 64 tokens, batch 64: seconds per round on 2 shared cores) and `anchor` (the
anchors' shapes: D=768, 12 layers, 64 tokens, batch 1024; for a bigger machine); `smoke` only checks the
script runs. Each round times every variant
once, in turn, and the median round is reported, so drift on a shared machine hits all variants alike.

    python bench/adapter_serving_cost.py [--preset cpu|anchor|smoke] [--tenants 64] [--rank 16] [--rounds 15]
        [--threads 2] [--out adapter-serving-cost.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.adalink.module import apply_mixed  # noqa: E402


@dataclass(frozen=True)
class Shape:
    dim: int
    depth: int
    heads: int
    mlp: int
    tokens: int
    batch: int


PRESETS = {
    "cpu": Shape(dim=256, depth=4, heads=4, mlp=1024, tokens=64, batch=64),
    "anchor": Shape(dim=768, depth=12, heads=12, mlp=3072, tokens=64, batch=1024),
    "smoke": Shape(dim=32, depth=1, heads=2, mlp=64, tokens=8, batch=64),  # seconds in all: a check, not a figure
}


class MixedLoRA(nn.Module):
    """Each row's own low-rank delta for one projection: x (B, T, in) -> bmm(bmm(x, A[slot]), B[slot])."""

    def __init__(self, tenants: int, d_in: int, d_out: int, rank: int) -> None:
        super().__init__()
        self.A = nn.Parameter(torch.randn(tenants, d_in, rank) * 0.02)
        self.B = nn.Parameter(torch.randn(tenants, rank, d_out) * 0.02)

    def forward(self, x: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        return torch.bmm(torch.bmm(x, self.A[slots]), self.B[slots])


class Block(nn.Module):
    def __init__(self, shape: Shape, lora: tuple[int, int] | None) -> None:
        super().__init__()
        D = shape.dim
        self.heads = shape.heads
        self.norm1, self.norm2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.fc1, self.fc2 = nn.Linear(D, shape.mlp), nn.Linear(shape.mlp, D)
        self.lora_qkv = MixedLoRA(lora[0], D, 3 * D, lora[1]) if lora else None
        self.lora_proj = MixedLoRA(lora[0], D, D, lora[1]) if lora else None

    def forward(self, x: torch.Tensor, slots: torch.Tensor | None) -> torch.Tensor:
        B, L, D = x.shape
        y = self.norm1(x)
        qkv = self.qkv(y)
        if self.lora_qkv is not None and slots is not None:
            qkv = qkv + self.lora_qkv(y, slots)
        q, k, v = qkv.view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, L, D)
        out = self.proj(attended)
        if self.lora_proj is not None and slots is not None:
            out = out + self.lora_proj(attended, slots)
        x = x + out
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Encoder(nn.Module):
    def __init__(self, shape: Shape, lora: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(shape, lora) for _ in range(shape.depth))
        self.norm = nn.LayerNorm(shape.dim)

    def forward(self, x: torch.Tensor, slots: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, slots)
        return self.norm(x)


def variants(
    shape: Shape, tenants: int, rank: int, activation: str
) -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    torch.manual_seed(0)
    base = Encoder(shape).eval()
    lora = Encoder(shape, (tenants, rank)).eval()
    # Slot 0 is the base model (zeros), as in the serving bank; tenants are slots 1..T.
    down = torch.randn(tenants + 1, rank, shape.dim) * 0.02
    up = torch.randn(tenants + 1, shape.dim, rank) * 0.02
    down[0], up[0] = 0.0, 0.0

    def full_finetune(x: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        for tenant in slots.unique().tolist():
            rows = (slots == tenant).nonzero().squeeze(1)
            out[rows] = base(x[rows])  # the tenant's own weights would go here
        return out

    return {
        "base": lambda x, slots: base(x),
        "adalink": lambda x, slots: base(apply_mixed(x, down, up, slots + 1, activation)),
        "lora_qkv_proj": lora,
        "full_finetune": full_finetune,
    }


def measure(shape: Shape, tenants: int, rank: int, activation: str, rounds: int, warmup: int) -> dict[str, float]:
    """Median seconds per batch of each variant over `rounds` interleaved rounds."""
    fns = variants(shape, tenants, rank, activation)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(shape.batch, shape.tokens, shape.dim, generator=generator)
    slots = torch.arange(shape.batch) % tenants  # every tenant present, mixed through the batch
    slots = slots[torch.randperm(shape.batch, generator=generator)]
    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.inference_mode():
        for round_index in range(warmup + rounds):
            for name, fn in fns.items():
                started = time.perf_counter()
                fn(x, slots)
                if round_index >= warmup:
                    times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--tenants", type=int, default=64)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--activation", default="gelu_tanh", help="AdaLink activation (the module's default)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    shape = PRESETS[args.preset]
    if shape.batch < args.tenants:
        parser.error(f"batch {shape.batch} cannot mix {args.tenants} tenants")
    torch.set_num_threads(args.threads)
    seconds = measure(shape, args.tenants, args.rank, args.activation, args.rounds, args.warmup)
    result = {
        "shape": asdict(shape),
        "tenants": args.tenants,
        "rank": args.rank,
        "activation": args.activation,
        "threads": args.threads,
        "rounds": args.rounds,
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "sequences_per_s": {k: shape.batch / v for k, v in seconds.items()},
        "throughput_vs_base": {k: seconds["base"] / v for k, v in seconds.items()},
    }
    print(
        f"{shape} tenants={args.tenants} rank={args.rank} threads={args.threads} load={result['load_average_1m']:.2f}"
    )
    print("| variant | sequences/s | throughput vs base |\n| --- | --- | --- |")
    for name in seconds:
        print(f"| {name} | {result['sequences_per_s'][name]:.1f} | {result['throughput_vs_base'][name]:.3f}x |")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
