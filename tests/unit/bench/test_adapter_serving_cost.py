"""The adapter serving-cost benchmark measures what it says: every variant computes a batch of the right shape, the
mixed-tenant adapters really differ per row, and the timing loop reports every variant."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from bench.adapter_serving_cost import Shape, main, measure, variants

TINY = Shape(dim=16, depth=1, heads=2, mlp=32, tokens=4, batch=8)


def test_variants_give_each_row_its_own_tenants_output() -> None:
    fns = variants(TINY, tenants=4, rank=2, activation="gelu_tanh")
    x = torch.randn(TINY.batch, TINY.tokens, TINY.dim)
    slots = torch.arange(TINY.batch) % 4
    with torch.inference_mode():
        base = fns["base"](x, slots)
        assert torch.allclose(fns["full_finetune"](x, slots), base, atol=1e-6)  # one reused weight copy
        for name in ("adalink", "lora_qkv_proj"):
            out = fns[name](x, slots)
            assert out.shape == base.shape and not torch.allclose(out, base)
            same_input = fns[name](x[:1].expand(4, -1, -1).contiguous(), torch.arange(4))
            assert not torch.allclose(same_input[0], same_input[1])  # two tenants, one input: two outputs


def test_measure_times_every_variant(tmp_path: Path) -> None:
    seconds = measure(TINY, tenants=4, rank=2, activation="identity", rounds=2, warmup=1)
    assert set(seconds) == {"base", "adalink", "lora_qkv_proj", "full_finetune"} and min(seconds.values()) > 0
    out = tmp_path / "cost.json"
    assert main(["--preset", "smoke", "--rounds", "1", "--warmup", "0", "--threads", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["tenants"] == 64 and result["throughput_vs_base"]["base"] == 1.0
