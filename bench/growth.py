"""How cost grows: with the items per request, the image resolution, the text length, and adapter churn.

Through the gateway (one stack serving 224, 448 and 896 px), from a separate load process, every input distinct:

  batch       texts per request 1, 8, 32, 128 (concurrency 8) and images per request 1, 4, 16 (concurrency 4):
              items/s and request latency
  resolution  one 320x240 JPEG per request resized to 224, 448 or 896 (concurrency 4; tokens grow with the square)
  text        texts of 2, 8, 24, 64 and 200 words (concurrency 8): the model reads at most 64 tokens, padded to 64
  memory      a second stack whose adapter banks hold 4 adapters: requests rotate over 8 adapters, so every request
              loads one adapter and evicts another, in both banks; resident memory of the gateway and of Triton
              (with its Python-backend processes) after a warm-up and every 10 of 100 load/evict cycles

    python bench/growth.py [--scale 1] [--parts batch,resolution,text,memory] [--out build/bench]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bodies import WORDS, Bodies, encoded_image  # noqa: E402
from bench.httpload import HttpCell, drive_http  # noqa: E402
from bench.report import Record, arguments, pyplot, ratio, save, scaled, table  # noqa: E402
from bench.stack import Model, Stack, build_model, derive_repository, populate_store, with_cpu  # noqa: E402

PATHS = {"text": "/v1/embeddings", "image": "/v1/embed/image"}
BATCH = {"text": ((1, 800), (8, 250), (32, 80), (128, 24)), "image": ((1, 200), (4, 60), (16, 16))}
RESOLUTION = ((224, 200), (448, 60), (896, 12))
TEXT_WORDS = ((2, 800), (8, 800), (24, 800), (64, 800), (200, 800))
CYCLES, BANK = 100, 4


def cell(
    stack: Stack, record: Record, name: str, spec: Bodies, concurrency: int, requests: int, **tags: Any
) -> dict[str, Any]:
    http = HttpCell(name, PATHS[spec.kind], spec, concurrency, requests, warmup=2)
    result = with_cpu(stack, requests + 2, lambda: drive_http(stack.gateway_url, [http], stack.headers)[0])
    print(f"{name}: {result['items_per_s']} items/s, p50 {result['p50_ms']} ms", flush=True)
    return record.add({**result, **tags})


def load_curves(model: Model, workdir: Path, record: Record, scale: float, parts: set[str]) -> None:
    store = workdir / "a-growth"
    repository = derive_repository(model, workdir / "repo-growth", adapter_store=store)
    resolutions = tuple(model.served["resolutions"])
    seed = 0
    with Stack(repository, workdir / "stack-growth", model.tokenizer, store) as stack:
        if "batch" in parts:
            for modality, steps in BATCH.items():
                concurrency = 8 if modality == "text" else 4
                for per_request, count in steps:
                    seed += 1
                    spec = Bodies(modality, per_request=per_request, seed=seed)  # type: ignore[arg-type]
                    name = f"{modality} x{per_request}"
                    cell(
                        stack, record, name, spec, concurrency, scaled(count, scale, 2), part="batch", modality=modality
                    )
        if "resolution" in parts:
            for resolution, count in RESOLUTION:
                if resolution not in resolutions:
                    continue
                seed += 1
                spec = Bodies("image", seed=seed, fields={"resolution": resolution})
                cell(
                    stack,
                    record,
                    f"image {resolution}px",
                    spec,
                    4,
                    scaled(count, scale, 2),
                    part="resolution",
                    resolution=resolution,
                )
        if "text" in parts:
            for words, count in TEXT_WORDS:
                seed += 1
                spec = Bodies("text", words=words, seed=seed)
                result = cell(
                    stack, record, f"text {words} words", spec, 8, scaled(count, scale, 2), part="text", words=words
                )
                result["tokens"] = token_count(model, words)


def token_count(model: Model, words: int) -> int:
    """Tokens the model reads for a text of `words` words like the bench's (before truncation at 64)."""
    import random

    from training.tipsv2.tokenizer import Tokenizer

    tokenizer = Tokenizer(model.tokenizer)
    text = " ".join([*random.Random(words).choices(WORDS, k=max(words - 1, 0)), "n1.2.3.0"])
    return len(tokenizer.encode(text))


def memory(model: Model, workdir: Path, record: Record, cycles: int) -> None:
    """`cycles` load/evict cycles in both banks (capacity 4, 8 adapters in rotation), memory sampled every 10."""
    store = workdir / "a-memory"
    repository = derive_repository(model, workdir / "repo-memory", adapter_store=store, adapter_capacity=BANK)
    with Stack(repository, workdir / "stack-memory", model.tokenizer, store) as stack:
        names = [f"churn{i}" for i in range(2 * BANK)]
        populate_store(store, stack.model_id(), names)
        with httpx.Client(base_url=stack.gateway_url, headers=stack.headers, timeout=60) as client:

            def one_cycle(index: int) -> None:
                adapter = names[index % len(names)]
                text = {"input": f"churn {index} {time.time_ns()}", "adapter": adapter}
                image = {"images": [encoded_image((160, 120), index + 7_000_000)], "adapter": adapter}
                for path, body in ((PATHS["text"], text), (PATHS["image"], image)):
                    response = client.post(path, json=body)
                    if response.status_code != 200:
                        raise RuntimeError(f"cycle {index}: {response.status_code} {response.text[:300]}")

            for index in range(4 * len(names)):  # warm-up: allocators and banks reach their steady state
                one_cycle(index)
            loads_before = bank_counters(stack)
            samples = [{"cycles": 0, **stack.memory_mib()}]
            for index in range(cycles):
                one_cycle(4 * len(names) + index)
                if (index + 1) % 10 == 0:
                    samples.append({"cycles": index + 1, **stack.memory_mib()})
            loads_after = bank_counters(stack)
    first, last = samples[0], samples[-1]
    record.data["memory"] = {
        "bank_capacity": BANK,
        "adapters_in_rotation": len(names),
        "cycles": cycles,
        "samples": samples,
        "bank_loads": {k: loads_after[k] - loads_before.get(k, 0) for k in loads_after},
        "growth_percent": {k: ratio(100 * (last[k] - first[k]), first[k]) for k in ("gateway", "triton")},
        "growth_mib": {k: round(last[k] - first[k], 1) for k in ("gateway", "triton")},
    }


def bank_counters(stack: Stack) -> dict[str, float]:
    """Adapter loads and evictions per embedding stage, from Triton's metrics port."""
    out: dict[str, float] = {}
    for line in httpx.get(stack.triton_metrics_url, timeout=10).text.splitlines():
        for name in ("tipsv2_adapter_loads_total", "tipsv2_adapter_evictions_total"):
            if line.startswith(name + "{"):
                model = line.split('model="', 1)[1].split('"', 1)[0]
                out[f"{model} {name.removeprefix('tipsv2_adapter_').removesuffix('_total')}"] = float(line.split()[-1])
    return out


COLUMNS = [
    ("name", "cell"),
    ("items_per_request", "items/req"),
    ("tokens", "tokens"),
    ("concurrency", "conc"),
    ("items_per_s", "items/s"),
    ("requests_per_s", "req/s"),
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
    ("gateway_cpu", "gateway cpu ms/item"),
    ("triton_cpu", "triton cpu ms/item"),
    ("errors", "errors"),
    ("load_average_1m", "load 1m"),
]


def rows(record: Record) -> list[dict[str, Any]]:
    out = []
    for r in record.data["results"]:
        per_item = r["items_per_request"]
        cpu = r["cpu_ms_per_request"]
        gateway = round(cpu["gateway"] / per_item, 3)
        out.append({**r, "gateway_cpu": gateway, "triton_cpu": round(cpu["triton"] / per_item, 3)})
    return out


def plot(record: Record) -> str | None:
    plt = pyplot()
    if plt is None:
        return None
    figure, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    results = record.data["results"]
    for modality, marker in (("text", "o-"), ("image", "s-")):
        mine = [r for r in results if r.get("part") == "batch" and r["modality"] == modality]
        if mine:
            axes[0][0].plot(
                [r["items_per_request"] for r in mine],
                [r["items_per_s"] for r in mine],
                marker,
                label=f"{modality} items/s",
            )
    axes[0][0].set_xscale("log", base=2)
    axes[0][0].set_xlabel("items per request")
    axes[0][0].set_ylabel("items/s")
    axes[0][0].set_title("batch size (through the gateway)")
    axes[0][0].legend(fontsize=8)
    res = [r for r in results if r.get("part") == "resolution"]
    if res:
        axes[0][1].plot([r["resolution"] for r in res], [r["p50_ms"] for r in res], "o-", label="p50 ms")
        axes[0][1].plot([r["resolution"] for r in res], [r["items_per_s"] for r in res], "s--", label="images/s")
        axes[0][1].set_xscale("log", base=2)
        axes[0][1].set_yscale("log")
        axes[0][1].set_xticks([r["resolution"] for r in res], [str(r["resolution"]) for r in res])
        axes[0][1].set_xlabel("resolution (px)")
        axes[0][1].set_title("image resolution")
        axes[0][1].legend(fontsize=8)
    texts = [r for r in results if r.get("part") == "text"]
    if texts:
        axes[1][0].plot([r["words"] for r in texts], [r["items_per_s"] for r in texts], "o-", label="texts/s")
        axes[1][0].plot([r["words"] for r in texts], [r["p50_ms"] for r in texts], "s--", label="p50 ms")
        axes[1][0].set_xscale("log")
        axes[1][0].set_xlabel("words per text (the model reads at most 64 tokens)")
        axes[1][0].set_title("text length")
        axes[1][0].legend(fontsize=8)
    memory_ = record.data.get("memory")
    if memory_:
        samples = memory_["samples"]
        for key in ("gateway", "triton"):
            axes[1][1].plot([s["cycles"] for s in samples], [s[key] for s in samples], "o-", label=key)
        axes[1][1].set_xlabel("adapter load/evict cycles")
        axes[1][1].set_ylabel("resident memory (MiB)")
        axes[1][1].set_title(f"memory under adapter churn (bank of {memory_['bank_capacity']})")
        axes[1][1].legend(fontsize=8)
    for axis in axes.flat:
        axis.grid(alpha=0.3)
    return save(figure, record.plot_path())


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--parts", default="batch,resolution,text,memory")
    parser.add_argument("--cycles", type=int, default=CYCLES)
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    record = Record("growth", args.out, argv if argv is not None else sys.argv[1:])
    model = build_model(args.workdir)
    if parts & {"batch", "resolution", "text"}:
        load_curves(model, args.workdir, record, args.scale, parts)
        print(table(rows(record), COLUMNS))
    if "memory" in parts:
        memory(model, args.workdir, record, args.cycles)
        memory_ = record.data["memory"]
        print(
            table(
                memory_["samples"],
                [("cycles", "cycles"), ("gateway", "gateway MiB"), ("triton", "triton MiB"), ("redis", "redis MiB")],
            )
        )
        print(f"growth over {args.cycles} cycles: {memory_['growth_percent']} %, bank loads {memory_['bank_loads']}")
    record.data["table"] = rows(record)
    record.data["plot"] = plot(record)
    print(f"wrote {record.write()}")
    return 1 if any(r["errors"] for r in record.data["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
