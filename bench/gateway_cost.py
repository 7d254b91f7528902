"""What the gateway costs: the same requests through the gateway and straight to Triton, and the cache-hit path.

One stack (redis-server, the real tritonserver, a gateway process); a separate load process sends, alternating:

  * triton   the ensembles over gRPC (`bench/loadgen.py`): one row per request, token ids or 224x224 uint8 pixels,
             to a second tritonserver of the same export configured for such clients (a 2 ms queue window, in which
             Triton's dynamic batcher gathers rows; the gateway's Triton has the product's default, no window, since
             the gateway batches across requests itself);
  * gateway  the same work over HTTP: one text (tokenised by the gateway), or one 320x240 JPEG (decoded and resized
             by the gateway), every request distinct so that the cache misses, then Redis is written;
  * gateway, rate limit on  the same, on a second gateway process whose per-tenant limit is checked in Redis on
             every request (limit set too high to refuse any): the price of the quota;
  * cache hit  the same texts / images over and over (a pool of 64, warmed first): Redis answers, Triton is idle.

at concurrency 1 and 32, three alternated rounds; ratios are of the medians. CPU milliseconds per request of each
process say what limits each figure. The gateway runs as the chart runs it (`python -m service.gateway.workers`,
`--workers` processes, 2 by default: one per core here).

With `--baseline REF` (e.g. `main`), an earlier version's gateway (its `service/` from git, run as it ran: uvicorn,
one worker, on the tritonserver with the 2 ms window that was then the default) takes the same cells right after
ours in every round, as "gateway (before)" and "cache hit (before)":
before and after in one run, alternated, under the same load. `--granian` adds our gateway under granian (a Rust
HTTP server) in place of uvicorn, as "gateway (granian)" and "cache hit (granian)".

    python bench/gateway_cost.py [--scale 1] [--rounds 3] [--workers 2] [--baseline REF] [--granian] [--out DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bodies import Bodies  # noqa: E402
from bench.httpload import HttpCell, drive_http  # noqa: E402
from bench.loadgen import Cell, drive  # noqa: E402
from bench.report import Record, arguments, ratio, scaled, table  # noqa: E402
from bench.stack import (  # noqa: E402
    DIRECT_QUEUE_DELAY_US,
    GATEWAY_WORKERS,
    Stack,
    baseline_tree,
    build_model,
    derive_repository,
    served_delay_us,
    with_cpu,
)

PATHS = {"text": "/v1/embeddings", "image": "/v1/embed/image"}
REQUESTS = {("text", 1): 300, ("text", 32): 2000, ("image", 1): 150, ("image", 32): 500}
CACHE_REQUESTS = {"text": 4000, "image": 3000}
RATE_LIMITED = {"TIPS_RATE_LIMIT__REQUESTS": "1000000000"}  # checked in Redis on every request, never refuses


def run_round(stack: Stack, urls: dict[str, str], record: Record, scale: float, round_: int) -> None:
    """`urls`: the gateways by path name ("gateway", "gateway, rate limit on", and "gateway (before)" if any)."""
    seed = round_ * 100
    for (modality, concurrency), count in REQUESTS.items():
        n = scaled(count, scale)
        tags = {"modality": modality, "concurrency": concurrency, "round": round_}
        cell = Cell(f"{modality} c={concurrency}", modality, concurrency, n)
        result = with_cpu(stack, n + cell.warmup, lambda c=cell: drive(stack.direct_url, [c], margin_s=1.0)[0])
        record.add({**result, **tags, "path": "triton"})
        for path, url in urls.items():
            if path == "gateway, rate limit on" and (modality, concurrency) != ("text", 32):
                continue  # the quota's price is one Redis script per request: one cell shows it
            seed += 1
            http = HttpCell(cell.name, PATHS[modality], Bodies(modality, seed=seed), concurrency, n)  # type: ignore[arg-type]
            result = with_cpu(stack, n + http.warmup, lambda h=http, u=url: drive_http(u, [h], stack.headers)[0])
            record.add({**result, **tags, "path": path})
        print(f"round {round_} {modality} c={concurrency} done", flush=True)
    for modality, count in CACHE_REQUESTS.items():
        n, pool = scaled(count, scale), 64
        seed += 1
        spec = Bodies(modality, seed=seed, unique=False, pool=pool)  # type: ignore[arg-type]
        http = HttpCell(f"{modality} cache hit", PATHS[modality], spec, 32, n, warmup=pool)
        for path, url in urls.items():
            if path == "gateway, rate limit on":
                continue
            hit = path.replace("gateway", "cache hit")
            result = with_cpu(stack, n + pool, lambda h=http, u=url: drive_http(u, [h], stack.headers)[0])
            record.add({**result, "modality": modality, "concurrency": 32, "round": round_, "path": hit})


def median_of(rows: list[dict[str, Any]], key: str) -> float:
    return round(float(np.median([r[key] for r in rows])), 2) if rows else 0.0


def summarize(record: Record) -> list[dict[str, Any]]:
    """One row per (path, modality, concurrency): medians over the rounds, and ratios to Triton direct."""
    rows = []
    keys = sorted({(r["path"], r["modality"], r["concurrency"]) for r in record.data["results"]}, key=str)
    order = ["triton", "gateway", "gateway (before)", "gateway (granian)", "gateway, rate limit on"]
    order += ["cache hit", "cache hit (before)", "cache hit (granian)"]
    for path, modality, concurrency in sorted(keys, key=lambda k: (k[1], k[2], order.index(k[0]))):
        runs = record.results(path=path, modality=modality, concurrency=concurrency)
        direct = record.results(path="triton", modality=modality, concurrency=concurrency)
        cpu = {
            name: round(float(np.median([r["cpu_ms_per_request"][name] for r in runs])), 3)
            for name in runs[0]["cpu_ms_per_request"]
        }
        row = {
            "path": path,
            "modality": modality,
            "concurrency": concurrency,
            "rounds": len(runs),
            "rps": median_of(runs, "requests_per_s"),
            "p50": median_of(runs, "p50_ms"),
            "p99": median_of(runs, "p99_ms"),
            "errors": sum(r["errors"] for r in runs),
            **{f"cpu_{k}": v for k, v in cpu.items()},
            "load_1m": median_of(runs, "load_average_1m"),
        }
        if direct and path != "triton" and not path.startswith("cache hit"):
            row["rps_vs_triton"] = ratio(row["rps"], median_of(direct, "requests_per_s"))
            row["p50_vs_triton"] = ratio(row["p50"], median_of(direct, "p50_ms"))
            row["p99_vs_triton"] = ratio(row["p99"], median_of(direct, "p99_ms"))
        rows.append(row)
    return rows


COLUMNS = [
    ("path", "path"),
    ("modality", "modality"),
    ("concurrency", "conc"),
    ("rps", "req/s"),
    ("p50", "p50 ms"),
    ("p99", "p99 ms"),
    ("rps_vs_triton", "req/s vs triton"),
    ("p50_vs_triton", "p50 vs triton"),
    ("p99_vs_triton", "p99 vs triton"),
    ("cpu_gateway", "gateway cpu ms/req"),
    ("cpu_triton", "triton cpu ms/req"),
    ("cpu_redis", "redis cpu ms/req"),
    ("cpu_client", "client cpu ms/req"),
    ("errors", "errors"),
    ("load_1m", "load 1m"),
]


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds; tables show their medians")
    parser.add_argument("--workers", type=int, default=GATEWAY_WORKERS, help="gateway processes (TIPS_WORKERS)")
    parser.add_argument("--baseline", help="git revision whose gateway runs beside ours, e.g. main (before/after)")
    parser.add_argument("--granian", action="store_true", help="also run our gateway under granian instead of uvicorn")
    args = parser.parse_args(argv)
    record = Record("gateway_cost", args.out, argv if argv is not None else sys.argv[1:])
    model = build_model(args.workdir)
    store = args.workdir / "a-gateway-cost"
    served = derive_repository(
        model, args.workdir / "repo-gateway-cost", adapter_store=store, max_queue_delay_us=served_delay_us()
    )
    direct = derive_repository(
        model, args.workdir / "repo-gateway-cost-direct", adapter_store=store, max_queue_delay_us=DIRECT_QUEUE_DELAY_US
    )
    workdir = args.workdir / "stack-gateway-cost"
    with Stack(
        served, workdir, model.tokenizer, store, gateway_workers=args.workers, direct_repository=direct
    ) as stack:
        urls = {"gateway": stack.gateway_url}
        if args.baseline:
            tree = baseline_tree(args.baseline, args.workdir)
            # as it ran: with Triton's 2 ms window (its default then), i.e. the tritonserver of the direct cells
            urls["gateway (before)"] = stack.start_gateway(
                "before", baseline=tree, TIPS_TRITON__URL=stack.direct_url
            ).url
            record.data["baseline"] = {"ref": args.baseline, "tree": tree.name}
        if args.granian:
            urls["gateway (granian)"] = stack.start_gateway("granian", granian=True).url
        urls["gateway, rate limit on"] = stack.start_gateway("rate-limited", **RATE_LIMITED).url
        for round_ in range(1, args.rounds + 1):
            run_round(stack, urls, record, args.scale, round_)
    rows = summarize(record)
    record.data["summary"] = rows
    print(table(rows, COLUMNS))
    print(f"wrote {record.write()}")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
