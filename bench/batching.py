"""Dynamic batching on vs off, at concurrency 32, on the real tritonserver.

Two tritonservers from the same exported model, up side by side (an idle one costs nothing): `on` is the served
configuration (max batch 64 texts / 32 images, 2 ms queue window), `off` has max batch 1 on every model, so each
request runs alone. A separate load process sends one row per request over gRPC (`bench/loadgen.py`), the two
servers alternating for three rounds; the ratio is of the medians. Triton's own statistics give the rows per trunk
execution.

    python bench/batching.py [--scale 1] [--rounds 3] [--out build/bench]
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import Cell, drive  # noqa: E402
from bench.report import Record, arguments, ratio, scaled, table  # noqa: E402
from bench.stack import Stack, build_model, derive_repository, with_cpu  # noqa: E402

CONFIGS = {
    "on": {"text_max_batch": 64, "image_max_batch": 32},
    "off": {"text_max_batch": 1, "image_max_batch": 1},
}
REQUESTS = {"text": 3000, "image": 600}
CONCURRENCY = 32


def summarize(record: Record) -> list[dict[str, Any]]:
    rows = []
    for modality in REQUESTS:
        medians = {}
        for config in CONFIGS:
            runs = record.results(config=config, modality=modality)
            medians[config] = {
                key: round(float(np.median([r[key] for r in runs])), 2)
                for key in ("items_per_s", "p50_ms", "p99_ms", "trunk_avg_batch_rows")
            }
            medians[config]["cpu_triton"] = round(
                float(np.median([r["cpu_ms_per_request"]["triton"] for r in runs])), 3
            )
        on, off = medians["on"], medians["off"]
        rows.append(
            {
                "modality": modality,
                "on_rps": on["items_per_s"],
                "off_rps": off["items_per_s"],
                "speedup": ratio(on["items_per_s"], off["items_per_s"]),
                "on_p50": on["p50_ms"],
                "off_p50": off["p50_ms"],
                "on_p99": on["p99_ms"],
                "off_p99": off["p99_ms"],
                "on_batch": on["trunk_avg_batch_rows"],
                "off_batch": off["trunk_avg_batch_rows"],
                "on_cpu": on["cpu_triton"],
                "off_cpu": off["cpu_triton"],
                "errors": sum(r["errors"] for r in record.results(modality=modality)),
            }
        )
    return rows


COLUMNS = [
    ("modality", "modality"),
    ("on_rps", "on req/s"),
    ("off_rps", "off req/s"),
    ("speedup", "on/off"),
    ("on_p50", "on p50 ms"),
    ("off_p50", "off p50 ms"),
    ("on_p99", "on p99 ms"),
    ("off_p99", "off p99 ms"),
    ("on_batch", "on rows/exec"),
    ("off_batch", "off rows/exec"),
    ("on_cpu", "on triton cpu ms/req"),
    ("off_cpu", "off triton cpu ms/req"),
    ("errors", "errors"),
]


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    record = Record("batching", args.out, argv if argv is not None else sys.argv[1:])
    model = build_model(args.workdir)
    store = args.workdir / "a-batching"
    with contextlib.ExitStack() as servers:
        stacks = {}
        for config, options in CONFIGS.items():
            repository = derive_repository(model, args.workdir / f"repo-batch-{config}", adapter_store=store, **options)
            stack = Stack(repository, args.workdir / f"stack-batch-{config}", model.tokenizer, store, gateway=False)
            stacks[config] = servers.enter_context(stack)
        for round_ in range(1, args.rounds + 1):
            for modality, count in REQUESTS.items():
                for config, stack in stacks.items():
                    cell = Cell(
                        f"{modality} c={CONCURRENCY} batching {config}",
                        modality,
                        CONCURRENCY,
                        scaled(count, args.scale),
                    )
                    result = with_cpu(
                        stack,
                        cell.requests + cell.warmup,
                        lambda s=stack, c=cell: drive(s.triton_url, [c], margin_s=1.0)[0],
                    )
                    record.add({**result, "config": config, "round": round_})
                    print(f"round {round_} {cell.name}: {result['items_per_s']} items/s", flush=True)
    rows = summarize(record)
    record.data["summary"] = rows
    print(table(rows, COLUMNS))
    print(f"wrote {record.write()}")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
