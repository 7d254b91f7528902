"""Our stack against the naive alternative, side by side in one run on one machine.

Ours: the gateway (`python -m service.gateway.workers`, 2 processes as the chart runs it; it batches across requests) ->
the real tritonserver (dynamic batching with the product's default queue window) with Redis, the tiny TIPSv2. Theirs:
the same weights in Hugging Face transformers' `Tipsv2Model` behind a minimal FastAPI app, one request at a time
(`bench/naive_server.py`). Both get identical requests (one text, or one 320x240 JPEG resized to 224, per request; every
request distinct, so our cache never hits) from a separate load process, at concurrency 1, 8 and 32; the two servers
alternate cell by cell, so load from elsewhere on the machine falls on both.

    python bench/vs_naive.py [--scale 1] [--workers 2] [--baseline REF] [--out build/bench]

`--baseline REF` (e.g. `main`) adds an earlier version's gateway, run as it ran (uvicorn, one worker), on the same
Triton and Redis as a third server of every cell ("before"): before and after in one run, alternated.

Prints a table (requests/s, p50, p99 for each, and ours over theirs; and the CPU milliseconds each side's server
processes spent per request, which contention on a shared machine moves far less than throughput) and writes
vs_naive.json and vs_naive.png.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bodies import Bodies  # noqa: E402
from bench.httpload import HttpCell, drive_http  # noqa: E402
from bench.report import Record, arguments, pyplot, ratio, save, scaled, table  # noqa: E402
from bench.stack import (  # noqa: E402
    GATEWAY_WORKERS,
    HttpProcess,
    Stack,
    baseline_tree,
    build_model,
    cpu_seconds,
    derive_repository,
    served_delay_us,
    with_cpu,
)

CONCURRENCY = (1, 8, 32)
REQUESTS = {"text": (300, 1000, 2000), "image": (150, 300, 600)}
PATHS = {"text": "/v1/embeddings", "image": "/v1/embed/image"}


def plan(scale: float) -> list[tuple[str, int, int, int]]:
    """(modality, concurrency, requests, seed) per pair of cells; each pair its own seed, so no cache hits."""
    out = []
    for modality, counts in REQUESTS.items():
        for concurrency, count in zip(CONCURRENCY, counts, strict=True):
            out.append((modality, concurrency, scaled(count, scale), len(out) + 1))
    return out


def naive_cpu(naive: HttpProcess, sent: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The naive server's CPU milliseconds per request (one process does all its work)."""
    assert naive.process is not None
    before = cpu_seconds([naive.process.pid])
    result = run()
    spent = cpu_seconds([naive.process.pid]) - before
    per_request = {"naive": round(spent * 1e3 / max(sent, 1), 3), "client": result["client_cpu_ms_per_request"]}
    return {**result, "cpu_ms_per_request": per_request}


def server_cpu(result: dict[str, Any]) -> float:
    """CPU milliseconds per request of every server process of a side (ours: gateway, Triton, Redis)."""
    return round(sum(v for k, v in result["cpu_ms_per_request"].items() if k != "client"), 2)


def compare(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (modality, concurrency): both sides and ours over theirs (latency ratios: < 1 is better)."""
    rows = []
    for ours in (r for r in results if r["server"] == "ours"):
        theirs = next(r for r in results if r["server"] == "naive" and r["name"] == ours["name"])
        rows.append(
            {
                "modality": ours["modality"],
                "concurrency": ours["concurrency"],
                "ours_rps": ours["requests_per_s"],
                "naive_rps": theirs["requests_per_s"],
                "throughput_x": ratio(ours["requests_per_s"], theirs["requests_per_s"]),
                "ours_p50": ours["p50_ms"],
                "naive_p50": theirs["p50_ms"],
                "ours_p99": ours["p99_ms"],
                "naive_p99": theirs["p99_ms"],
                "p99_ratio": ratio(ours["p99_ms"], theirs["p99_ms"]),
                "ours_cpu": server_cpu(ours),
                "naive_cpu": server_cpu(theirs),
                "errors": ours["errors"] + theirs["errors"],
                "load_1m": ours["load_average_1m"],
            }
        )
        before = next((r for r in results if r["server"] == "before" and r["name"] == ours["name"]), None)
        if before is not None:
            rows[-1].update(
                before_rps=before["requests_per_s"],
                before_x=ratio(before["requests_per_s"], theirs["requests_per_s"]),
                before_p50=before["p50_ms"],
                before_cpu=server_cpu(before),
                errors=rows[-1]["errors"] + before["errors"],
            )
    return rows


COLUMNS = [
    ("modality", "modality"),
    ("concurrency", "conc"),
    ("ours_rps", "ours req/s"),
    ("naive_rps", "naive req/s"),
    ("throughput_x", "ours/naive"),
    ("ours_p50", "ours p50 ms"),
    ("naive_p50", "naive p50 ms"),
    ("ours_p99", "ours p99 ms"),
    ("naive_p99", "naive p99 ms"),
    ("p99_ratio", "p99 ours/naive"),
    ("ours_cpu", "ours cpu ms/req"),
    ("naive_cpu", "naive cpu ms/req"),
    ("before_rps", "before req/s"),
    ("before_x", "before/naive"),
    ("before_p50", "before p50 ms"),
    ("before_cpu", "before cpu ms/req"),
    ("errors", "errors"),
    ("load_1m", "load 1m"),
]


def plot(rows: list[dict[str, Any]], path: Path) -> str | None:
    plt = pyplot()
    if plt is None:
        return None
    figure, axes = plt.subplots(2, 2, figsize=(9, 6.5))
    for column, modality in enumerate(("text", "image")):
        mine = [r for r in rows if r["modality"] == modality]
        x = [r["concurrency"] for r in mine]
        for row, (metric, label) in enumerate((("rps", "requests/s"), ("p99", "p99 latency (ms)"))):
            axis = axes[row][column]
            axis.plot(x, [r[f"ours_{metric}"] for r in mine], "o-", label="ours (gateway + Triton)")
            axis.plot(x, [r[f"naive_{metric}"] for r in mine], "s--", label="naive (transformers + FastAPI)")
            axis.set_xscale("log", base=2)
            axis.set_xticks(x, [str(c) for c in x])
            axis.set_yscale("log")
            axis.set_xlabel("concurrent clients")
            axis.set_title(f"{modality}: {label}")
            axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return save(figure, path)


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--workers", type=int, default=GATEWAY_WORKERS, help="gateway processes (TIPS_WORKERS)")
    parser.add_argument("--baseline", help="git revision whose gateway runs as a third server, e.g. main")
    args = parser.parse_args(argv)
    record = Record("vs_naive", args.out, argv if argv is not None else sys.argv[1:])
    model = build_model(args.workdir)
    repository = derive_repository(
        model,
        args.workdir / "repo-vs-naive",
        adapter_store=str(args.workdir / "a-vs"),
        max_queue_delay_us=served_delay_us(),
    )
    naive_command = [sys.executable, "-m", "bench.naive_server", "--weights", str(model.weights), "--port", "{port}"]
    workdir, store = args.workdir / "stack-vs-naive", args.workdir / "a-vs"
    with Stack(repository, workdir, model.tokenizer, store, gateway_workers=args.workers) as stack:
        naive = HttpProcess(naive_command, {}, args.workdir / "naive.log").start()
        servers = [("ours", stack.gateway_url), ("naive", naive.url)]
        if args.baseline:
            servers.append(
                ("before", stack.start_gateway("before", baseline=baseline_tree(args.baseline, args.workdir)).url)
            )
            record.data["baseline"] = args.baseline
        try:
            for modality, concurrency, requests, seed in plan(args.scale):
                for server, url in servers:
                    cell = HttpCell(
                        f"{modality} c={concurrency}",
                        PATHS[modality],
                        # ours and theirs get identical bodies; before shares our Redis, so it gets its own
                        Bodies(modality, seed=seed + (1000 if server == "before" else 0)),  # type: ignore[arg-type]
                        concurrency,
                        requests,
                        tags={"server": server, "modality": modality},
                    )
                    sent = cell.requests + cell.warmup

                    def run(c: HttpCell = cell, u: str = url) -> dict[str, Any]:
                        return drive_http(u, [c], stack.headers)[0]

                    result = naive_cpu(naive, sent, run) if server == "naive" else with_cpu(stack, sent, run)
                    print(f"{server:>6} {cell.name:<14} {result['requests_per_s']:>9.1f} req/s", flush=True)
                    record.add(result)
            record.data["memory_mib"] = {**stack.memory_mib(), "naive": naive.rss_mib()}
        finally:
            naive.stop()
    rows = compare(record.data["results"])
    record.data["comparison"] = rows
    record.data["plot"] = plot(rows, record.plot_path())
    print(table(rows, COLUMNS))
    print(f"wrote {record.write()}")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
