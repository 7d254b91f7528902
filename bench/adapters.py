"""What adapters cost: many mixed in flight, a cold one, and many registered.

mix         throughput with 1, 8, 64 and 512 distinct adapters mixed (each request names the next one in
            rotation, so every dynamic batch mixes tenants) as a ratio to the base model alone, concurrency 32,
            straight to Triton (the adapter stage itself) and through the gateway (registry lookups included);
            rounds alternate the cells, ratios are of the medians; the bank holds all 512 (warm-up loads them)
cold        first-request latency of an adapter not yet in the bank (uploaded through the API, never used), next
            to the same adapter's second request and a base request, one client, text and image
registered  10, 1,000 and 10,000 adapters registered by one tenant: upload latency (through the API), listing
            latency (GET /v1/adapters, whole and a page of 100) and request latency (adapters drawn at random
            from all registered, so most are cold in the bank and in the gateway's registry) against base requests

  python bench/adapters.py [--scale 1] [--rounds 3] [--parts mix,cold,registered] [--out build/bench]
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bodies import Bodies, encoded_image  # noqa: E402
from bench.httpload import HttpCell, drive_http  # noqa: E402
from bench.loadgen import Cell, drive  # noqa: E402
from bench.report import Record, arguments, pyplot, ratio, save, scaled, table  # noqa: E402
from bench.stack import Model, Stack, adapter_file, build_model, derive_repository, populate_store, with_cpu  # noqa: E402

MIX = (0, 1, 8, 64, 512)  # 0 = base model only
MIX_REQUESTS = {"text": 2000, "image": 400}
PATHS = {"text": "/v1/embeddings", "image": "/v1/embed/image"}
REGISTERED = (10, 1000, 10_000)


# --- mix ------------------------------------------------------------------------------------------------------


def mix(model: Model, workdir: Path, record: Record, scale: float, rounds: int, counts: tuple[int, ...]) -> None:
    store = workdir / "a-mix"
    repository = derive_repository(model, workdir / "repo-mix", adapter_store=store, adapter_capacity=1024)
    names = [f"mix{i:03d}" for i in range(max(counts))]
    with Stack(repository, workdir / "stack-mix", model.tokenizer, store) as stack:
        ids = populate_store(store, stack.model_id(), names)
        seed = 0
        for round_ in range(1, rounds + 1):
            for count in counts:
                for modality, requests in MIX_REQUESTS.items():
                    n = scaled(requests, scale)
                    tags = {"part": "mix", "adapters": count, "modality": modality, "round": round_}
                    warm = max(8, count)  # the warm-up loads every adapter: the window measures resident ones
                    used = tuple(ids[:count]) or ("",)
                    cell = Cell(f"{modality} {count} adapters", modality, 32, n, adapters=used, warmup=warm)
                    result = with_cpu(stack, n + warm, lambda c=cell: drive(stack.triton_url, [c], margin_s=1.0)[0])
                    record.add({**result, **tags, "path": "triton"})
                    if modality == "text":
                        seed += 1
                        spec = Bodies("text", seed=seed, adapters=tuple(names[:count]))
                        http = HttpCell(cell.name, PATHS["text"], spec, 32, n, warmup=warm)
                        result = with_cpu(
                            stack, n + warm, lambda h=http: drive_http(stack.gateway_url, [h], stack.headers)[0]
                        )
                        record.add({**result, **tags, "path": "gateway"})
                print(f"mix round {round_}: {count} adapters done", flush=True)


def mix_rows(record: Record, counts: tuple[int, ...]) -> list[dict[str, Any]]:
    rows = []
    for path, modality in (("triton", "text"), ("triton", "image"), ("gateway", "text")):
        base = float(
            np.median([r["items_per_s"] for r in record.results(part="mix", path=path, modality=modality, adapters=0)])
        )
        for count in counts:
            runs = record.results(part="mix", path=path, modality=modality, adapters=count)
            median = float(np.median([r["items_per_s"] for r in runs]))
            rows.append(
                {
                    "path": path,
                    "modality": modality,
                    "adapters": count or "base",
                    "items_per_s": round(median, 1),
                    "runs": ", ".join(f"{r['items_per_s']:.0f}" for r in runs),
                    "vs_base": ratio(median, base),
                    "p50": round(float(np.median([r["p50_ms"] for r in runs])), 2),
                    "p99": round(float(np.median([r["p99_ms"] for r in runs])), 2),
                    "cpu_triton": round(float(np.median([r["cpu_ms_per_request"]["triton"] for r in runs])), 3),
                    "errors": sum(r["errors"] for r in runs),
                }
            )
    return rows


# --- cold -----------------------------------------------------------------------------------------------------


def timed_post(client: httpx.Client, url: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = client.post(url, json=body)
    elapsed = (time.perf_counter() - started) * 1e3
    if response.status_code != 200:
        raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
    return elapsed


def cold(model: Model, workdir: Path, record: Record, count: int) -> None:
    """Per fresh adapter: upload, then cold / warm / base requests, text then image (distinct inputs: no cache)."""
    store = workdir / "a-cold"
    repository = derive_repository(model, workdir / "repo-cold", adapter_store=store)
    with Stack(repository, workdir / "stack-cold", model.tokenizer, store) as stack:
        model_id = stack.model_id()
        with httpx.Client(base_url=stack.gateway_url, headers=stack.headers, timeout=60) as client:
            for i in range(count):
                name = f"cold{i:03d}-{int(time.time() * 1000) % 100000}"
                status, upload_s = stack.upload(name, adapter_file(model_id, 1000 + i), client)
                assert status == 201, status
                sample: dict[str, Any] = {"part": "cold", "index": i, "upload_ms": round(upload_s * 1e3, 2)}
                for modality in ("text", "image"):
                    for step, (label, adapter) in enumerate((("cold", name), ("warm", name), ("base", None))):
                        if modality == "text":
                            body: dict[str, Any] = {"input": f"cold start {i} {label} {time.time_ns()}"}
                        else:  # distinct images: the cache must not answer the warm or base request
                            body = {"images": [encoded_image((320, 240), (time.time_ns() % 10**6) * 3 + step)]}
                        if adapter:
                            body["adapter"] = adapter
                        sample[f"{modality}_{label}_ms"] = round(timed_post(client, PATHS[modality], body), 2)
                record.add(sample)


def cold_rows(record: Record) -> list[dict[str, Any]]:
    samples = record.results(part="cold")
    rows = []
    for modality in ("text", "image"):
        cold_ms = np.array([s[f"{modality}_cold_ms"] for s in samples])
        warm_ms = np.array([s[f"{modality}_warm_ms"] for s in samples])
        base_ms = np.array([s[f"{modality}_base_ms"] for s in samples])
        extra = cold_ms - warm_ms
        rows.append(
            {
                "modality": modality,
                "samples": len(samples),
                "cold_p50": round(float(np.median(cold_ms)), 2),
                "cold_max": round(float(cold_ms.max()), 2),
                "warm_p50": round(float(np.median(warm_ms)), 2),
                "base_p50": round(float(np.median(base_ms)), 2),
                "extra_p50": round(float(np.median(extra)), 2),
                "extra_p90": round(float(np.percentile(extra, 90)), 2),
            }
        )
    return rows


# --- registered -----------------------------------------------------------------------------------------------


def registered(model: Model, workdir: Path, record: Record, scale: float, levels: tuple[int, ...]) -> None:
    store = workdir / "a-registered"
    import shutil

    shutil.rmtree(store, ignore_errors=True)  # the levels count from an empty store
    repository = derive_repository(model, workdir / "repo-registered", adapter_store=store)
    with Stack(repository, workdir / "stack-registered", model.tokenizer, store) as stack:
        model_id = stack.model_id()
        names: list[str] = []
        with httpx.Client(base_url=stack.gateway_url, headers=stack.headers, timeout=120) as client:
            for level in levels:
                new = [f"r{i:05d}" for i in range(len(names), level)]
                populate_store(store, model_id, new)
                names += new
                uploads = [
                    stack.upload(f"up{level}-{i}", adapter_file(model_id, 5000 + i), client)
                    for i in range(scaled(20, scale))
                ]
                listings, pages = [], []
                for _ in range(scaled(5, scale, floor=2)):
                    started = time.perf_counter()
                    response = client.get("/v1/adapters")
                    listings.append((time.perf_counter() - started) * 1e3)
                    listed, size = len(response.json()["data"]), len(response.content)
                    started = time.perf_counter()  # one page of 100 from the middle of the names
                    page = client.get("/v1/adapters", params={"limit": 100, "after": names[len(names) // 2 - 1]})
                    pages.append((time.perf_counter() - started) * 1e3)
                    assert page.status_code == 200, page.text
                n = scaled(300, scale)
                picks = tuple(random.Random(level).choice(names) for _ in range(n + 8))
                results = {}
                for label, adapters in (("adapter", picks), ("base", ())):
                    spec = Bodies("text", seed=level * 10 + len(label), adapters=adapters)
                    http = HttpCell(f"{level} registered, {label}", PATHS["text"], spec, 8, n)
                    results[label] = drive_http(stack.gateway_url, [http], stack.headers)[0]
                upload_ms = np.array([s for _, s in uploads]) * 1e3
                record.add(
                    {
                        "part": "registered",
                        "registered": level,
                        "upload_p50_ms": round(float(np.median(upload_ms)), 2),
                        "upload_max_ms": round(float(upload_ms.max()), 2),
                        "upload_errors": sum(1 for status, _ in uploads if status != 201),
                        "list_p50_ms": round(float(np.median(listings)), 1),
                        "list_max_ms": round(float(max(listings)), 1),
                        "listed": listed,
                        "list_bytes": size,
                        "page_p50_ms": round(float(np.median(pages)), 1),
                        "request_p50_ms": results["adapter"]["p50_ms"],
                        "request_p99_ms": results["adapter"]["p99_ms"],
                        "base_p50_ms": results["base"]["p50_ms"],
                        "base_p99_ms": results["base"]["p99_ms"],
                        "request_errors": results["adapter"]["errors"] + results["base"]["errors"],
                    }
                )
                print(f"registered {level}: done", flush=True)


# --- report ---------------------------------------------------------------------------------------------------

MIX_COLUMNS = [
    ("path", "path"),
    ("modality", "modality"),
    ("adapters", "adapters"),
    ("items_per_s", "items/s (median)"),
    ("vs_base", "vs base"),
    ("runs", "runs"),
    ("p50", "p50 ms"),
    ("p99", "p99 ms"),
    ("cpu_triton", "triton cpu ms/req"),
    ("errors", "errors"),
]
COLD_COLUMNS = [
    ("modality", "modality"),
    ("samples", "adapters"),
    ("cold_p50", "cold p50 ms"),
    ("cold_max", "cold max ms"),
    ("warm_p50", "warm p50 ms"),
    ("base_p50", "base p50 ms"),
    ("extra_p50", "cold - warm p50"),
    ("extra_p90", "cold - warm p90"),
]
REGISTERED_COLUMNS = [
    ("registered", "registered"),
    ("upload_p50_ms", "upload p50 ms"),
    ("upload_max_ms", "upload max ms"),
    ("list_p50_ms", "list p50 ms"),
    ("list_max_ms", "list max ms"),
    ("list_bytes", "list bytes"),
    ("page_p50_ms", "page of 100 p50 ms"),
    ("request_p50_ms", "request p50 ms"),
    ("request_p99_ms", "request p99 ms"),
    ("base_p50_ms", "base p50 ms"),
    ("base_p99_ms", "base p99 ms"),
    ("request_errors", "errors"),
]


def plot(record: Record) -> str | None:
    plt = pyplot()
    if plt is None:
        return None
    mix_rows_ = record.data.get("mix", [])
    regs = record.results(part="registered")
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for path, modality in (("triton", "text"), ("triton", "image"), ("gateway", "text")):
        rows = [r for r in mix_rows_ if r["path"] == path and r["modality"] == modality and r["adapters"] != "base"]
        if rows:
            axes[0].plot([r["adapters"] for r in rows], [r["vs_base"] for r in rows], "o-", label=f"{modality}, {path}")
    axes[0].axhline(0.95, color="grey", linestyle=":", label="target 0.95")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("distinct adapters mixed in flight")
    axes[0].set_ylabel("throughput / base model alone")
    axes[0].set_title("adapters mixed, concurrency 32")
    axes[0].legend(fontsize=8)
    if regs:
        x = [r["registered"] for r in regs]
        for key, label in (
            ("upload_p50_ms", "upload p50"),
            ("list_p50_ms", "listing p50"),
            ("page_p50_ms", "listing a page of 100, p50"),
            ("request_p50_ms", "request p50 (random adapter)"),
            ("base_p50_ms", "request p50 (base)"),
        ):
            axes[1].plot(x, [r[key] for r in regs], "o-", label=label)
        axes[1].set_xscale("log")
        axes[1].set_yscale("log")
        axes[1].set_xlabel("adapters registered by the tenant")
        axes[1].set_ylabel("ms")
        axes[1].set_title("registered adapters")
        axes[1].legend(fontsize=8)
    for axis in axes:
        axis.grid(alpha=0.3)
    return save(figure, record.plot_path())


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parts", default="mix,cold,registered")
    parser.add_argument("--mix", default=",".join(map(str, MIX)), help="adapter counts mixed (0 = base alone)")
    parser.add_argument("--cold-adapters", type=int, default=15)
    parser.add_argument("--registered", default=",".join(map(str, REGISTERED)), help="levels, comma-separated")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    record = Record("adapters", args.out, argv if argv is not None else sys.argv[1:])
    model = build_model(args.workdir)
    errors = 0
    if "mix" in parts:
        counts = tuple(int(x) for x in args.mix.split(","))
        if counts[0] != 0:
            parser.error("--mix starts with 0: the base model alone is what the others are compared with")
        mix(model, args.workdir, record, args.scale, args.rounds, counts)
        record.data["mix"] = mix_rows(record, counts)
        print(table(record.data["mix"], MIX_COLUMNS))
        errors += sum(r["errors"] for r in record.data["mix"])
    if "cold" in parts:
        cold(model, args.workdir, record, args.cold_adapters)
        record.data["cold"] = cold_rows(record)
        print(table(record.data["cold"], COLD_COLUMNS))
    if "registered" in parts:
        levels = tuple(int(x) for x in args.registered.split(","))
        registered(model, args.workdir, record, args.scale, levels)
        rows = record.results(part="registered")
        print(table(rows, REGISTERED_COLUMNS))
        errors += sum(r["request_errors"] + r["upload_errors"] for r in rows)
    record.data["plot"] = plot(record)
    print(f"wrote {record.write()}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
