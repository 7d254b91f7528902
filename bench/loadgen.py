"""Closed-loop gRPC load against Triton's TIPSv2 ensembles, run in its own process by the serving benchmarks.

    drive(url, [Cell(...), ...], processes=P)  ->  one merged result per cell (items/s, p50/p99 ms, batch, errors)

A cell sends exactly `requests` requests of `rows` rows each from `concurrency` concurrent clients (asyncio, one
gRPC channel each) after `warmup` unmeasured ones; `drive` splits it over P processes (`python -m bench.loadgen
PLAN.json`, one per share) whose measured windows start together, so that neither the caller's interpreter nor
one client process's GIL is what limits the measurement. Row j of request i uses adapters[(i * rows + j) % n] ("" =
base), so a 64-adapter cell mixes tenants inside every dynamic batch. Counts are bounded: a cell always ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

TEXT_MODEL, IMAGE_MODEL = "tipsv2_text", "tipsv2_image"


@dataclass(frozen=True)
class Cell:
    name: str
    modality: str  # "text" | "image"
    concurrency: int
    requests: int
    rows: int = 1
    adapters: tuple[str, ...] = ("",)
    resolution: int = 224  # images
    text_len: int = 64
    warmup: int = 8
    outputs: tuple[str, ...] = ()  # image outputs to ask for (default: cls1)


def payloads(cell: Cell, count: int, seed: int = 0) -> list[np.ndarray]:
    """A few distinct request bodies, reused round-robin (building them must not be what is measured)."""
    rng = np.random.default_rng(seed)
    if cell.modality == "text":
        out = []
        for _ in range(count):
            ids = np.zeros((cell.rows, cell.text_len), np.int32)
            lengths = rng.integers(4, cell.text_len, cell.rows)
            for row, n in enumerate(lengths):
                ids[row, :n] = rng.integers(2, 900, n)
            out.append(ids)
        return out
    shape = (cell.rows, cell.resolution, cell.resolution, 3)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


def row_adapters(cell: Cell, index: int) -> np.ndarray:
    n = len(cell.adapters)
    ids = [cell.adapters[(index * cell.rows + j) % n].encode() for j in range(cell.rows)]
    return np.array(ids, dtype=object).reshape(-1, 1)


async def run_cell(url: str, cell: Cell, start_at: float = 0.0) -> dict[str, Any]:
    """Warm-up, then (at wall-clock `start_at`, if given) the measured requests; raw latencies in ms."""
    import tritonclient.grpc.aio as grpcclient

    model = TEXT_MODEL if cell.modality == "text" else IMAGE_MODEL
    input_name, dtype = ("input_ids", "INT32") if cell.modality == "text" else ("pixels", "UINT8")
    outputs = cell.outputs or (("text_embedding",) if cell.modality == "text" else ("cls1",))
    bodies = payloads(cell, 8)
    clients = [grpcclient.InferenceServerClient(url) for _ in range(cell.concurrency)]
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(cell.warmup + cell.requests))

    async def one(client: Any, index: int) -> None:
        body = bodies[index % len(bodies)]
        adapters = row_adapters(cell, index)
        tensor = grpcclient.InferInput(input_name, list(body.shape), dtype)
        tensor.set_data_from_numpy(body)
        adapter = grpcclient.InferInput("adapter", list(adapters.shape), "BYTES")
        adapter.set_data_from_numpy(adapters)
        wanted = [grpcclient.InferRequestedOutput(o) for o in outputs]
        started = time.perf_counter()
        try:
            await client.infer(model, [tensor, adapter], outputs=wanted, client_timeout=120)
        except Exception as exc:  # counted and reported, never silently dropped
            errors.append(str(exc)[:300])
            return
        if index >= cell.warmup:
            latencies.append((time.perf_counter() - started) * 1e3)

    async def worker(client: Any) -> None:
        for index in counter:  # shared: every request index is sent exactly once
            await one(client, index)

    try:
        for _ in range(cell.warmup):  # alone, so that the measured window starts with a warm server
            await one(clients[0], next(counter))
        late = time.time() - start_at if start_at else 0.0
        if late < 0:
            await asyncio.sleep(-late)
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(c) for c in clients))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    return {
        "seconds": seconds,
        "client_cpu_s": cpu,
        "latencies_ms": latencies,
        "errors": errors,
        "late_s": max(late, 0.0),
    }


def drive(
    url: str,
    cells: list[Cell],
    env: dict[str, str] | None = None,
    processes: int = 1,
    margin_s: float = 5.0,
    timeout: float = 1800,
) -> list[dict[str, Any]]:
    """Runs each cell from `processes` separate load processes (its concurrency and requests split between them),
    all starting their measured window at the same wall-clock time; returns one merged result per cell, with the
    trunk's average batch (rows per execution) from Triton's statistics over that window."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    results = []
    for cell in cells:
        parts = _split(cell, processes)
        start_at = time.time() + margin_s
        children = [_spawn(url, part, start_at, env) for part in parts]
        time.sleep(max(0.0, start_at - time.time()))
        trunk = f"{TEXT_MODEL if cell.modality == 'text' else IMAGE_MODEL}_trunk"
        before = _stats(client, trunk)
        outcomes = [collect_child(child, timeout) for child in children]
        after = _stats(client, trunk)
        results.append(_merge(cell, outcomes, before, after))
    return results


def _split(cell: Cell, processes: int) -> list[Cell]:
    n = max(1, min(processes, cell.concurrency))
    return [
        replace(
            cell,
            concurrency=cell.concurrency // n + (i < cell.concurrency % n),
            requests=cell.requests // n + (i < cell.requests % n),
            warmup=max(1, cell.warmup // n) if i else cell.warmup,
        )
        for i in range(n)
    ]


def _spawn(url: str, cell: Cell, start_at: float, env: dict[str, str] | None) -> tuple[subprocess.Popen[str], str]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        handle.write(json.dumps({"url": url, "cell": asdict(cell), "start_at": start_at}))
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen", handle.name],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return child, handle.name


def collect_child(spawned: tuple[subprocess.Popen[str], str], timeout: float) -> dict[str, Any]:
    child, plan = spawned
    try:
        out, err = child.communicate(timeout=timeout)
    finally:
        os.unlink(plan)
    if child.returncode != 0:
        raise RuntimeError(f"load generator failed ({child.returncode}): {err[-3000:]}")
    outcome: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return outcome


def _stats(client: Any, model: str) -> tuple[int, int]:
    """Triton's (inference_count, execution_count) of a model: rows run and batches run."""
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


def _merge(
    cell: Cell, outcomes: list[dict[str, Any]], before: tuple[int, int], after: tuple[int, int]
) -> dict[str, Any]:
    latencies = np.array([ms for o in outcomes for ms in o["latencies_ms"]] or [0.0])  # 0: nothing came back
    errors = [e for o in outcomes for e in o["errors"]]
    done = sum(len(o["latencies_ms"]) for o in outcomes)
    seconds = max(o["seconds"] for o in outcomes)
    return {
        "name": cell.name,
        "modality": cell.modality,
        "concurrency": cell.concurrency,
        "processes": len(outcomes),
        "requests": done,
        "rows": cell.rows,
        "adapters": len({a for a in cell.adapters if a}),
        "seconds": round(seconds, 3),
        "items_per_s": round(done * cell.rows / seconds, 1),
        "requests_per_s": round(done / seconds, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "late_start_s": round(max(o["late_s"] for o in outcomes), 2),
        "trunk_avg_batch_rows": round((after[0] - before[0]) / max(after[1] - before[1], 1), 1),
        "client_cpu_ms_per_request": round(sum(o.get("client_cpu_s", 0.0) for o in outcomes) * 1e3 / max(done, 1), 3),
    }


def main(argv: list[str]) -> int:
    with open(argv[0]) as handle:
        plan = json.load(handle)
    cell = Cell(**{k: tuple(v) if isinstance(v, list) else v for k, v in plan["cell"].items()})
    print(json.dumps(asyncio.run(run_cell(plan["url"], cell, plan["start_at"]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
