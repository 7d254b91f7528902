"""Closed-loop gRPC load against Triton's TIPSv2 models, run in its own process by the serving benchmarks.

    drive(url, [Cell(...), ...], processes=P)  ->  one merged result per cell (items/s, p50/p99 ms, batch, errors,
                                                   Triton's per-model statistics over the measured window)

A cell runs `concurrency` concurrent clients (asyncio, one gRPC channel each) sending requests of `rows` rows after
`warmup` unmeasured ones, in one of two modes:
- counted (`requests`): exactly that many requests, timed from the first to the last;
- timed window (`window_s` > 0): clients send until the window closes and only requests that started and finished
  inside it count, so neither the ramp-up nor the drain at the end (the last requests finishing while fewer clients
  are left) dilutes the rate. The window is bounded; so is a counted cell: a cell always ends.
`drive` splits a cell over P processes (`python -m bench.loadgen PLAN.json`, one per share) whose measured windows
start together, so that neither the caller's interpreter nor one client process's GIL is what limits the
measurement. Row j of request i uses adapters[(i * rows + j) % n] ("" = base), so a 64-adapter cell mixes tenants
inside every dynamic batch.
"""

from __future__ import annotations

import asyncio
import itertools
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
    window_s: float = 0.0  # > 0: a timed window instead of a request count (see the module's docstring)


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
    window = (start_at, start_at + cell.window_s) if cell.window_s > 0 else None
    counter = iter(range(cell.warmup + cell.requests)) if window is None else itertools.count()

    async def one(client: Any, index: int) -> None:
        body = bodies[index % len(bodies)]
        adapters = row_adapters(cell, index)
        tensor = grpcclient.InferInput(input_name, list(body.shape), dtype)
        tensor.set_data_from_numpy(body)
        adapter = grpcclient.InferInput("adapter", list(adapters.shape), "BYTES")
        adapter.set_data_from_numpy(adapters)
        wanted = [grpcclient.InferRequestedOutput(o) for o in outputs]
        started, wall = time.perf_counter(), time.time()
        try:
            await client.infer(model, [tensor, adapter], outputs=wanted, client_timeout=120)
        except Exception as exc:  # counted and reported, never silently dropped
            errors.append(str(exc)[:300])
            return
        if index < cell.warmup:
            return
        if window is None or (window[0] <= wall and time.time() <= window[1]):
            latencies.append((time.perf_counter() - started) * 1e3)

    async def worker(client: Any) -> None:
        for index in counter:  # shared: every request index is sent exactly once
            if window is not None and time.time() >= window[1]:
                return
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
        "seconds": cell.window_s if window is not None else seconds,
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
    batching model's average batch (rows per execution) and every model's statistics over that window."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    served = {m["name"] for m in client.get_model_repository_index(as_json=True).get("models", [])}
    results = []
    for cell in cells:
        model = TEXT_MODEL if cell.modality == "text" else IMAGE_MODEL
        models = sorted(m for m in served if m == model or m.startswith(f"{model}_"))
        batching = f"{model}_trunk" if f"{model}_trunk" in served else model  # the ensemble's trunk, or the fused model
        parts = _split(cell, processes)
        start_at = time.time() + margin_s
        children = [_spawn(url, part, start_at, env) for part in parts]
        time.sleep(max(0.0, start_at - time.time()))
        before = {m: model_stats(client, m) for m in models}
        if cell.window_s > 0:  # read the statistics when the window closes, not after the stragglers
            time.sleep(max(0.0, start_at + cell.window_s - time.time()))
            after = {m: model_stats(client, m) for m in models}
        outcomes = [collect_child(child, timeout) for child in children]
        if cell.window_s <= 0:
            after = {m: model_stats(client, m) for m in models}
        result = _merge(cell, outcomes, before[batching], after[batching])
        result["window"] = [round(start_at, 3), round(start_at + result["seconds"], 3)]
        result["model_stats"] = {m: stats_delta(before[m], after[m]) for m in models}
        results.append(result)
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


STAT_PHASES = ("queue", "compute_input", "compute_infer", "compute_output")


def model_stats(client: Any, model: str) -> dict[str, int]:
    """Triton's cumulative statistics of one model: rows and executions, and (count, ns) of each request phase."""
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    out = {key: int(stats.get(key, 0)) for key in ("inference_count", "execution_count")}
    phases = stats.get("inference_stats", {})
    for phase in STAT_PHASES:
        out[f"{phase}_count"] = int(phases.get(phase, {}).get("count", 0))
        out[f"{phase}_ns"] = int(phases.get(phase, {}).get("ns", 0))
    return out


def stats_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    """Over a window: executions, average rows per execution, and microseconds per request in each phase."""
    executions = after["execution_count"] - before["execution_count"]
    delta: dict[str, float] = {
        "executions": executions,
        "avg_batch_rows": round((after["inference_count"] - before["inference_count"]) / max(executions, 1), 1),
    }
    for phase in STAT_PHASES:
        count = after[f"{phase}_count"] - before[f"{phase}_count"]
        delta[f"{phase}_us"] = round((after[f"{phase}_ns"] - before[f"{phase}_ns"]) / max(count, 1) / 1e3, 1)
    return delta


def _merge(cell: Cell, outcomes: list[dict[str, Any]], before: dict[str, int], after: dict[str, int]) -> dict[str, Any]:
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
        "trunk_avg_batch_rows": stats_delta(before, after)["avg_batch_rows"],
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
