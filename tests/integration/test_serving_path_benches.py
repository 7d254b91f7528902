"""The serving benchmarks' CPU-runnable parts: the separate-process load generator against the real tritonserver,
the CPU benchmark's plan, and the GPU benchmark end to end in its --dry-run (tiny model, CPU torch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.loadgen import Cell, drive
from bench.serving_cpu import cells, ratios, table
from service.triton.server import TritonServer

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_load_generator_splits_cells_over_processes_and_reads_tritons_batching(triton: TritonServer) -> None:
    plan = [
        Cell("text", "text", concurrency=8, requests=40, rows=2, warmup=2),
        Cell("image", "image", concurrency=4, requests=6, rows=1, resolution=112, warmup=1),
    ]
    text, image = drive(f"127.0.0.1:{triton.grpc_port}", plan, processes=2, margin_s=3.0)
    assert text["errors"] == 0 and image["errors"] == 0, (text["first_error"], image["first_error"])
    assert text["processes"] == 2 and text["requests"] == 40 and image["requests"] == 6
    assert text["items_per_s"] > 0 and text["p99_ms"] >= text["p50_ms"] > 0
    assert text["trunk_avg_batch_rows"] >= 2  # every execution ran at least one 2-row request


def test_cpu_benchmark_plan_is_bounded_and_mixes_64_adapters() -> None:
    adapters = [f"bench/a{i:02d}/1/{i:016x}" for i in range(64)]
    plan = cells(adapters, scale=1.0)
    assert {(c.modality, c.concurrency) for c in plan} >= {(m, c) for m in ("text", "image") for c in (1, 8, 32)}
    assert all(0 < c.requests <= 1200 for c in plan)
    mixed = [c for c in plan if c.name.endswith("64 adapters")]
    assert len(mixed) == 2 and all(len(set(c.adapters)) == 64 and c.warmup >= 64 for c in mixed)
    results = [
        {
            "name": c.name,
            "items_per_s": 10.0 * (2 if "64" in c.name else 1),
            "p50_ms": 1.0,
            "p99_ms": 2.0,
            "trunk_avg_batch_rows": 1.0,
            "errors": 0,
        }
        for c in plan
    ]
    assert ratios(results) == {"text": 2.0, "image": 2.0}
    assert "text c=32 64 adapters" in table(results)


@pytest.mark.slow
def test_gpu_benchmark_dry_run_measures_every_path(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "bench/serving_gpu.py", "--dry-run", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "serving_gpu.json").read_text())
    assert report["errors"] == [] and report["skipped"] == []
    direct = {(r["modality"], r["adapters"]) for r in report["direct"]}
    assert direct == {(m, a) for m in ("text", "image") for a in ("base", "8 adapters")}
    assert all(r["items_per_s"] > 0 for r in report["direct"])
    triton = {r["modality"]: r for r in report["triton"]}
    assert set(triton) == {"text", "image"}
    assert all(r["errors"] == 0 and r["adapters"] == 8 and r["items_per_s"] > 0 for r in triton.values())
