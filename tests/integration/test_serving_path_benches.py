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
from service.tools.local.tritonserver import TritonServer

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
    assert all(0 < c.requests <= 4000 for c in plan)
    mixed = [c for c in plan if "64 adapters" in c.name]
    single = [c for c in plan if "1 adapter" in c.name]
    assert len(mixed) == len(single) == 6
    assert all(len(set(c.adapters)) == 64 and c.warmup >= 64 for c in mixed)
    assert all(c.adapters == (adapters[0],) and c.concurrency == 32 for c in single)
    # medians over the alternated repeats: one outlier on either side does not move the ratio
    speed = {"1 adapter #1": 20.0, "1 adapter #2": 21.0, "1 adapter #3": 500.0, "64 adapters #1": 1.0}
    results = [
        {
            "name": c.name,
            "items_per_s": next((v for k, v in speed.items() if c.name.endswith(k)), 30.0),
            "p50_ms": 1.0,
            "p99_ms": 2.0,
            "trunk_avg_batch_rows": 1.0,
            "errors": 0,
        }
        for c in plan
    ]
    assert ratios(results) == {"text": round(30 / 21, 3), "image": round(30 / 21, 3)}
    assert "text c=32 64 adapters #3" in table(results)


def test_load_generator_counts_only_requests_inside_a_timed_window(triton: TritonServer) -> None:
    cell = Cell("text window", "text", concurrency=4, requests=0, rows=2, warmup=2, window_s=1.5)
    (result,) = drive(f"127.0.0.1:{triton.grpc_port}", [cell], processes=2, margin_s=2.5)
    assert result["errors"] == 0 and result["seconds"] == 1.5 and result["requests"] > 0
    assert result["items_per_s"] == round(result["requests"] * 2 / 1.5, 1)
    assert result["window"][1] - result["window"][0] == pytest.approx(1.5)
    stats = result["model_stats"]  # every model of the text path, over the window only
    assert set(stats) == {"tipsv2_text", "tipsv2_text_embed", "tipsv2_text_trunk"}
    trunk = stats["tipsv2_text_trunk"]
    assert trunk["executions"] > 0 and trunk["avg_batch_rows"] >= 2 and trunk["compute_infer_us"] > 0
    assert result["trunk_avg_batch_rows"] == trunk["avg_batch_rows"]


@pytest.mark.slow
def test_gpu_benchmark_dry_run_measures_every_path(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "bench/serving_gpu.py", "--dry-run", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "serving_gpu.json").read_text())
    assert report["errors"] == [] and report["skipped"] == []
    direct = {(r["path"], r["modality"], r["adapters"], r["at"]) for r in report["direct"]}
    for modality in ("text", "image"):
        assert ("direct frozen", modality, "8 adapters", "max") in direct  # the 2026-12-04 baseline, frozen
        assert {("direct fused", modality, a, "max") for a in ("base", "8 adapters")} <= direct
        assert ("direct fused", modality, "8 adapters", "served") in direct  # at the batch Triton formed
        assert ("direct fused compiled", modality, "8 adapters", "max") in direct
    assert all(r["items_per_s"] > 0 for r in report["direct"])
    cells = {(r["path"], r["modality"], r["rows"]) for r in report["triton"]}
    assert cells == {
        ("triton", "text", 4),
        ("triton", "image", 2),
        ("triton", "image", 1),  # images one row per request: dynamic batching ...
        ("triton max batch 1", "image", 1),  # ... against max batch 1
        ("triton compiled", "text", 4),
        ("triton compiled", "image", 2),
    }
    assert report["triton_compiled_models"] == {"tipsv2_text": 1.0, "tipsv2_image": 1.0}
    for row in report["triton"]:
        assert row["errors"] == 0 and row["adapters"] == 8 and row["items_per_s"] > 0 and row["seconds"] == 1.0
        assert row["model_stats"][f"tipsv2_{row['modality']}"]["compute_infer_us"] > 0  # Triton's own statistics
        assert "samples" in row["gpu"]  # none on this machine: no nvidia-smi
    summary = report["summary"]
    for modality in ("text", "image"):
        assert summary[modality]["served_over_direct_c4"] > 0 and summary[modality]["served_compiled"] > 0
    assert summary["image_dynamic_batching"]["ratio"] > 0
