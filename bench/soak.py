"""Soak: the whole stack at a steady request rate for a bounded time, with adapter swaps and cache churn.

One command; it builds the tiny model into --workdir (kept between runs), starts redis-server (AOF, as deployed),
the real tritonserver and a gateway process (uvicorn), then sends --rate requests per second, open loop, for
--minutes: texts (half repeated, so the cache hits, half new), images, classification, and requests naming an
adapter whose active version is swapped every --swap-s seconds (a new upload, and every other time a rollback).
Cache entries live --cache-ttl-s seconds, so the cache keeps filling and expiring. Every --sample-s seconds it
records the resident memory of the gateway, of tritonserver (with its Python-backend processes) and of Redis.

    python bench/soak.py [--minutes 10] [--rate 20] [--out soak.json]

Passes (exit 0) when no request failed with a 5xx or got no answer, and neither the gateway's nor Triton's memory
grew by more than --max-growth-mib between the second quarter of the run (after warm-up) and the last quarter.
Results are recorded in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stack import process_group, rss_mib  # noqa: E402

VARIANT, TENANT = "tipsv2-tiny", "soak"
ADAPTER = f"soak-{secrets.token_hex(4)}"  # a fresh name per run: the store in --workdir outlives runs


@dataclass
class Record:
    sent: float
    kind: str
    status: int  # 0: no answer
    latency_s: float


@dataclass
class Run:
    records: list[Record] = field(default_factory=list)
    samples: list[dict[str, float]] = field(default_factory=list)
    swaps: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, record: Record) -> None:
        with self.lock:
            self.records.append(record)


# --- the stack ------------------------------------------------------------------------------------------------


def prepare(workdir: Path) -> tuple[Path, Path, Path]:
    """Tiny weights, a repository reading `workdir/adapters`, built once per workdir."""
    from service.triton.build import build_repository
    from service.triton.repository import MANIFEST, RepositoryOptions
    from training.export.pipeline import build_local_weights

    weights, store, repository = workdir / "weights", workdir / "adapters", workdir / "repository"
    if not (weights / "tokenizer.model").is_file():
        build_local_weights(weights, VARIANT)
    store.mkdir(parents=True, exist_ok=True)
    if not (repository / MANIFEST).is_file():
        options = RepositoryOptions(adapter_store=str(store.resolve()), max_queue_delay_us=2000)
        build_repository(weights, VARIANT, repository, options, resolutions=(224,))
    return weights / "tokenizer.model", store, repository


def start_gateway(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "service.gateway.main:app", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--no-access-log"]
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"gateway not ready: {log.read_text()[-2000:]}")


# --- memory ---------------------------------------------------------------------------------------------------


def png(seed: int) -> str:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def adapter(model_id: str, seed: int) -> bytes:
    from training.adalink.samples import random_adapter

    return random_adapter(model_id, 64, seed=seed, task="soak")


class Traffic:
    """One request of a weighted mix; repeated inputs come from small pools so the cache is hit and churned."""

    def __init__(self, url: str, key: str, seed: int) -> None:
        self.url, self.headers = url, {"Authorization": f"Bearer {key}"}
        self.rng = random.Random(seed)
        self.images = [png(i) for i in range(16)]
        self.local = threading.local()

    def client(self) -> httpx.Client:
        if not hasattr(self.local, "client"):
            self.local.client = httpx.Client(base_url=self.url, headers=self.headers, timeout=30)
        return self.local.client  # type: ignore[no-any-return]

    def request(self, index: int) -> tuple[str, httpx.Response]:
        roll, client = self.rng.random(), self.client()
        if roll < 0.3:
            return "text (repeated)", client.post("/v1/embeddings", json={"input": f"pool {index % 200}"})
        if roll < 0.5:
            return "text (new)", client.post("/v1/embeddings", json={"input": f"new {index} {time.time_ns()}"})
        if roll < 0.65:
            body = {"input": f"adapted {index % 100}", "adapter": ADAPTER}
            return "text (adapter)", client.post("/v1/embeddings", json=body)
        if roll < 0.85:
            images = [self.images[index % len(self.images)]]
            return "image", client.post("/v1/embed/image", json={"images": images, "adapter": ADAPTER})
        labels = ["red", "green", "blue", f"label {index % 50}"]
        body = {"images": [self.images[index % len(self.images)]], "labels": labels}
        return "classify", client.post("/v1/classify", json=body)


def drive(traffic: Traffic, run: Run, rate: float, seconds: float) -> None:
    """Open loop: a request every 1/rate s whatever the latency (a slow server meets more concurrency)."""

    def one(index: int) -> None:
        sent = time.monotonic()
        try:
            kind, response = traffic.request(index)
            run.add(Record(sent, kind, response.status_code, time.monotonic() - sent))
        except httpx.HTTPError:
            run.add(Record(sent, "error", 0, time.monotonic() - sent))

    with ThreadPoolExecutor(max_workers=64) as pool:
        start = time.monotonic()
        for index in range(int(rate * seconds)):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, index)


def swap_adapters(url: str, key: str, model_id: str, run: Run, every_s: float, stop: threading.Event) -> None:
    """Uploads a new version every `every_s`; every other time rolls back to the previous one; keeps 4 versions."""
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    seed = 0
    while not stop.wait(every_s):
        seed += 1
        started = time.monotonic()
        uploaded = client.post("/v1/adapters", files={"file": ("a", adapter(model_id, seed))}, data={"name": ADAPTER})
        event: dict[str, Any] = {"t": started, "upload": uploaded.status_code}
        if uploaded.status_code == 201 and seed % 2 == 0:
            previous = uploaded.json()["uploaded_version"] - 1
            event["rollback"] = client.post(f"/v1/adapters/{ADAPTER}/activate", json={"version": previous}).status_code
        versions = client.get(f"/v1/adapters/{ADAPTER}").json().get("versions", [])
        for old in [v for v in versions if not v["active"]][:-3]:  # keeps the previous version for the rollback
            client.delete(f"/v1/adapters/{ADAPTER}", params={"version": old["version"]})
        event["s"] = round(time.monotonic() - started, 3)
        with run.lock:
            run.swaps.append(event)


def sample(pids: dict[str, list[int] | int], run: Run, every_s: float, stop: threading.Event, url: str) -> None:
    start = time.monotonic()
    while not stop.wait(every_s):
        reading: dict[str, float] = {"t": round(time.monotonic() - start, 1)}
        for name, target in pids.items():
            reading[f"{name}_mib"] = round(rss_mib(process_group(target) if isinstance(target, int) else target), 1)
        with contextlib.suppress(httpx.HTTPError, ValueError):
            for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
                if line.startswith("tipsv2_inflight_requests "):
                    reading["inflight"] = float(line.split()[1])
        with run.lock:
            run.samples.append(reading)


# --- report ---------------------------------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    array = np.array(values) * 1000
    return {f"p{q}_ms": round(float(np.percentile(array, q)), 1) for q in (50, 95, 99)} | {
        "max_ms": round(float(array.max()), 1)
    }


def growth(samples: list[dict[str, float]], key: str) -> float:
    """Median of the last quarter minus median of the second quarter (the first is warm-up)."""
    values = [s[key] for s in samples if key in s]
    if len(values) < 8:
        return 0.0
    quarter = len(values) // 4
    return round(float(np.median(values[-quarter:]) - np.median(values[quarter : 2 * quarter])), 1)


def summarise(run: Run, args: argparse.Namespace, start: float) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    by_kind: dict[str, list[float]] = {}
    per_minute: dict[int, list[float]] = {}
    for r in run.records:
        statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
        if r.status == 200:
            by_kind.setdefault(r.kind, []).append(r.latency_s)
            per_minute.setdefault(int((r.sent - start) // 60), []).append(r.latency_s)
    failures = sum(n for s, n in statuses.items() if s == "0" or s.startswith("5"))
    growths = {k: growth(run.samples, f"{k}_mib") for k in ("gateway", "triton", "redis")}
    return {
        "config": {k: v for k, v in vars(args).items() if k not in ("workdir", "out")},
        "requests": len(run.records),
        "statuses": dict(sorted(statuses.items())),
        "failures_5xx_or_no_answer": failures,
        "latency_ok": {k: percentiles(v) | {"n": len(v)} for k, v in sorted(by_kind.items())},
        "latency_by_minute": {m: percentiles(v) for m, v in sorted(per_minute.items())},
        "swaps": {
            "count": len(run.swaps),
            "uploads_201": sum(1 for s in run.swaps if s["upload"] == 201),
            "rollbacks_200": sum(1 for s in run.swaps if s.get("rollback") == 200),
        },
        "memory_mib": {"first": run.samples[0] if run.samples else {}, "last": run.samples[-1] if run.samples else {}},
        "samples": run.samples,  # every --sample-s: t (s), RSS (MiB) of gateway, triton (with stubs), redis; inflight
        "memory_growth_mib": growths,
        "max_inflight": max((s.get("inflight", 0) for s in run.samples), default=0),
        "passed": failures == 0
        and growths["gateway"] <= args.max_growth_mib
        and growths["triton"] <= args.max_growth_mib,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second (open loop)")
    parser.add_argument("--swap-s", type=float, default=10.0, help="seconds between adapter swaps")
    parser.add_argument("--cache-ttl-s", type=int, default=30, help="cache entry lifetime (churn)")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between memory samples")
    parser.add_argument("--max-growth-mib", type=float, default=32.0, help="allowed RSS growth, gateway and Triton")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "tipsv2-soak")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)

    from service.gateway.core.config import hash_key
    from service.tools.local.redis_server import RedisServer, free_port
    from service.tools.local.tritonserver import TritonServer

    args.workdir.mkdir(parents=True, exist_ok=True)
    tokenizer, store, repository = prepare(args.workdir)
    key, port = secrets.token_urlsafe(24), free_port()
    run, stop = Run(), threading.Event()
    with (
        RedisServer(free_port(), args.workdir / "redis") as redis,
        TritonServer(repository, args.workdir / "triton", free_port(), free_port(), free_port()) as triton,
    ):
        env = {
            "TIPS_API_KEYS": json.dumps({hash_key(key): TENANT}),
            "TIPS_TOKENIZER_PATH": str(tokenizer),
            "TIPS_ADAPTER_STORE": str(store.resolve()),
            "TIPS_TRITON__URL": f"127.0.0.1:{triton.grpc_port}",
            "TIPS_REDIS__URL": redis.url,
            "TIPS_REDIS__CACHE_TTL_S": str(args.cache_ttl_s),
            "TIPS_RATE_LIMIT__REQUESTS": "0",
        }
        gateway = start_gateway(env, port, args.workdir / "gateway.log")
        try:
            url = f"http://127.0.0.1:{port}"
            model_id = httpx.get(f"{url}/readyz").json()["model_id"]
            first = httpx.post(
                f"{url}/v1/adapters",
                files={"file": ("a", adapter(model_id, 0))},
                data={"name": ADAPTER},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert first.status_code == 201, first.text
            assert triton.process is not None and redis.process is not None
            pids: dict[str, list[int] | int] = {
                "gateway": [gateway.pid],
                "triton": triton.process.pid,
                "redis": [redis.process.pid],
            }
            helpers = [
                threading.Thread(target=swap_adapters, args=(url, key, model_id, run, args.swap_s, stop)),
                threading.Thread(target=sample, args=(pids, run, args.sample_s, stop, url)),
            ]
            for thread in helpers:
                thread.start()
            start = time.monotonic()
            drive(Traffic(url, key, seed=0), run, args.rate, args.minutes * 60)
            stop.set()
            for thread in helpers:
                thread.join(60)
            result = summarise(run, args, start)
        finally:
            stop.set()
            gateway.terminate()
            gateway.wait(30)
    result["machine"] = {"cores": os.cpu_count(), "load_avg": os.getloadavg(), "date": time.strftime("%Y-%m-%d")}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    print(f"soak {'PASSED' if result['passed'] else 'FAILED'} ({digest})", file=sys.stderr)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
