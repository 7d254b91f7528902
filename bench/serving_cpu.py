"""Serving benchmark on CPU: the real tritonserver (bundled with nvidia-pytriton) serving the tiny TIPSv2.

One command; it builds what it needs into --workdir (tiny weights, a `local` repository, 64 adapters in an
adapter store), starts tritonserver on free ports, drives load from a separate process (bench/loadgen.py) with
bounded request counts, and prints a table and JSON:

  * text and images (224 px), one row per request, at concurrency 1, 8 and 32: items/s, p50/p99 latency;
  * the ratio of a 64-adapter mixed workload (each request a different tenant's adapter) to a single-adapter one,
    at concurrency 32, for text and images (medians of three alternated runs of each).

    python bench/serving_cpu.py [--runtime numpy|torch] [--scale 1] [--out bench-cpu.json]

Results are recorded in docs/benchmarks.md. On a shared machine, note the load average printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import Cell, drive  # noqa: E402

VARIANT = "tipsv2-tiny"
TENANT = "bench"
CONCURRENCY = (1, 8, 32)


def write_adapters(store: Path, model_id: str, dim: int, count: int, rank: int = 16) -> list[str]:
    """`count` adapters with text and image parts, in the store layout the gateway writes."""
    from training.adalink.samples import store_random_adapters

    return store_random_adapters(store, model_id, dim, count=count, rank=rank, up_scale=0.1, tenant=TENANT, prefix="a")


def prepare(workdir: Path, runtime: str, threads: int) -> tuple[Path, list[str]]:
    from service.triton.build import build_repository
    from service.triton.repository import RepositoryOptions, read_manifest
    from training.export.pipeline import build_local_weights

    weights = workdir / "weights"
    if not (weights / "tokenizer.model").is_file():
        build_local_weights(weights, VARIANT)
    store = workdir / "adapters"
    options = RepositoryOptions(
        runtime=runtime,  # type: ignore[arg-type]
        adapter_store=str(store.resolve()),
        adapter_capacity=128,
        max_queue_delay_us=2000,
        text_max_batch=64,
        image_max_batch=32,
        intra_op_threads=threads,
    )
    repository = build_repository(weights, VARIANT, workdir / f"repository-{runtime}", options, (224,))
    served = read_manifest(repository)["served"]
    adapters = write_adapters(store, str(served["model_id"]), int(str(served["embed_dim"])), 64)
    return repository, adapters


def cells(adapters: list[str], scale: float, repeats: int = 3) -> list[Cell]:
    """Throughput cells at each concurrency, then single-adapter and 64-adapter cells alternated `repeats` times (on
    a shared machine, alternating keeps a burst of someone else's load from landing on one side of the ratio)."""

    def n(count: int) -> int:
        return max(8, int(count * scale))

    out = []
    for modality, counts in (("text", (600, 2000, 4000)), ("image", (200, 500, 800))):
        for concurrency, count in zip(CONCURRENCY, counts, strict=True):
            out.append(Cell(f"{modality} c={concurrency}", modality, concurrency, n(count)))
        for repeat in range(repeats):
            for label, used in (("1 adapter", adapters[:1]), ("64 adapters", adapters)):
                warm = len(used)  # the warm-up loads every adapter once: the window measures resident adapters
                name = f"{modality} c=32 {label} #{repeat + 1}"
                out.append(Cell(name, modality, 32, n(counts[-1]), adapters=tuple(used), warmup=warm))
    return out


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}


def table(results: list[dict[str, Any]]) -> str:
    head = f"{'cell':<24}{'items/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'batch':>7}{'errors':>8}"
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(
            f"{r['name']:<24}{r['items_per_s']:>10.1f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
            f"{r['trunk_avg_batch_rows']:>7.1f}{r['errors']:>8d}"
        )
    return "\n".join(rows)


def ratios(results: list[dict[str, Any]]) -> dict[str, float]:
    """64-adapter over single-adapter throughput at c=32: the ratio of the medians over the alternated repeats."""
    out = {}
    for modality in ("text", "image"):
        medians = [
            float(np.median([r["items_per_s"] for r in results if r["name"].startswith(f"{modality} c=32 {label} #")]))
            for label in ("64 adapters", "1 adapter")
        ]
        out[modality] = round(medians[0] / medians[1], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory")
    parser.add_argument("--runtime", choices=("numpy", "torch"), default="numpy")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every cell's request count")
    parser.add_argument(
        "--intra-op-threads",
        type=int,
        default=1,
        help="onnxruntime threads per trunk (1: several server processes already share the cores)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)

    from service.tools.local.redis_server import free_port
    from service.tools.local.tritonserver import TritonServer

    with tempfile.TemporaryDirectory(prefix="tipsv2-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        repository, adapters = prepare(workdir, args.runtime, args.intra_op_threads)
        server = TritonServer(
            repository.resolve(), (workdir / "triton").resolve(), free_port(), free_port(), free_port()
        )
        load_before = os.getloadavg()
        with server.start(timeout=180):
            results = drive(f"127.0.0.1:{server.grpc_port}", cells(adapters, args.scale), margin_s=3.0)
        report = {
            "command": "python bench/serving_cpu.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": machine(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "model": VARIANT,
            "runtime": args.runtime,
            "intra_op_threads": args.intra_op_threads,
            "results": results,
            "mixed_over_single_adapter": ratios(results),
        }
    print(table(results))
    print(f"64-adapter mixed / single-adapter throughput at c=32: {report['mixed_over_single_adapter']}")
    print(json.dumps(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
