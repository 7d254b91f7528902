"""Every benchmark scenario runs end to end at a tiny size against the real servers (tritonserver, redis-server, a
gateway process, the naive transformers server), writes its JSON record and plot, and reports no failed request.

The session's tiny model and repository (224 and 112 px) stand in for the bench's own build, so nothing is exported
here; sizes are chosen for speed, so no figure is checked beyond being measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import adapters, batching, gateway_cost, growth, vs_naive

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def workdir(tmp_path: Path, tiny_weights: Path, model_repository: Path) -> Path:
    (tmp_path / "weights").symlink_to(tiny_weights)
    (tmp_path / "repository").symlink_to(model_repository)
    return tmp_path


def run(module, workdir: Path, *flags: str) -> dict:  # type: ignore[no-untyped-def]
    out = workdir / "out"
    assert module.main(["--workdir", str(workdir), "--out", str(out), *flags]) == 0
    name = module.__name__.rsplit(".", 1)[1]
    return dict(json.loads((out / f"{name}.json").read_text()))


def test_vs_naive_measures_both_servers_at_every_concurrency(workdir: Path) -> None:
    record = run(vs_naive, workdir, "--scale", "0.01")
    pairs = {(r["modality"], r["concurrency"]) for r in record["comparison"]}
    assert pairs == {(m, c) for m in ("text", "image") for c in (1, 8, 32)}
    assert all(r["ours_rps"] > 0 and r["naive_rps"] > 0 and r["throughput_x"] for r in record["comparison"])
    assert Path(record["plot"]).is_file()


def test_gateway_cost_compares_gateway_with_triton_and_measures_cache_hits(workdir: Path) -> None:
    record = run(gateway_cost, workdir, "--scale", "0.01", "--rounds", "1")
    paths = {(r["path"], r["modality"]) for r in record["summary"]}
    assert {
        ("triton", "text"),
        ("gateway", "image"),
        ("gateway, rate limit on", "text"),
        ("cache hit", "image"),
    } <= paths
    gateway = next(r for r in record["summary"] if r["path"] == "gateway" and r["concurrency"] == 32)
    assert gateway["rps_vs_triton"] > 0 and gateway["cpu_gateway"] > 0
    hits = [r for r in record["summary"] if r["path"] == "cache hit"]
    assert len(hits) == 2 and all(r["rps"] > 0 and r["errors"] == 0 for r in hits)


def test_batching_compares_dynamic_batching_with_batch_one(workdir: Path) -> None:
    record = run(batching, workdir, "--scale", "0.01", "--rounds", "1")
    by_modality = {r["modality"]: r for r in record["summary"]}
    assert set(by_modality) == {"text", "image"}
    assert all(r["off_batch"] == 1.0 and r["speedup"] > 0 for r in by_modality.values())


def test_adapters_measures_mixes_cold_starts_and_registered_counts(workdir: Path) -> None:
    record = run(
        adapters,
        workdir,
        "--scale",
        "0.005",
        "--rounds",
        "1",
        "--mix",
        "0,1,3",
        "--cold-adapters",
        "1",
        "--registered",
        "2,5",
    )
    mixes = {(r["path"], r["modality"], r["adapters"]) for r in record["mix"]}
    assert ("triton", "image", 3) in mixes and ("gateway", "text", "base") in mixes
    assert all(r["vs_base"] > 0 and r["errors"] == 0 for r in record["mix"])
    assert {r["modality"] for r in record["cold"]} == {"text", "image"}
    levels = [r for r in record["results"] if r.get("part") == "registered"]
    assert [r["registered"] for r in levels] == [2, 5]
    assert [r["listed"] for r in levels] == [2 + 4, 5 + 8]  # the level, plus the 4 uploads timed at each level
    assert all(r["upload_errors"] == 0 and r["request_p50_ms"] > 0 for r in levels)


def test_growth_measures_every_curve_and_memory_under_adapter_churn(workdir: Path) -> None:
    record = run(growth, workdir, "--scale", "0.01", "--cycles", "10")
    parts = {r["part"] for r in record["results"]}
    assert parts == {"batch", "resolution", "text"}
    assert {r["resolution"] for r in record["results"] if r["part"] == "resolution"} == {224}  # what is served
    memory = record["memory"]
    assert [s["cycles"] for s in memory["samples"]] == [0, 10]
    assert memory["bank_loads"]["tipsv2_text_embed loads"] >= 10  # every cycle loaded (and evicted) an adapter
    assert memory["bank_loads"]["tipsv2_image_embed evictions"] >= 10
