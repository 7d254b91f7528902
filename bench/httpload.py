"""Closed-loop HTTP load against a gateway (ours or the naive one), run in its own process(es) by the scenarios.

    drive_http(url, [HttpCell(...), ...], headers, processes=P)  ->  one merged result per cell

A cell sends exactly `requests` requests (after `warmup` unmeasured ones) from `concurrency` keep-alive connections;
its bodies are built by the load process before its measured window (`bench.bodies`), so building them is not what
is measured. The client is a minimal HTTP/1.1 writer/reader on asyncio streams (0.1-0.25 ms of CPU per request,
reported per cell): on a 2-core machine whatever the client spends is taken from the server being measured.
Every status is counted; latencies are kept for 2xx answers only, and every other answer is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from bench.bodies import Bodies, build_bodies
from bench.loadgen import collect_child


@dataclass(frozen=True)
class HttpCell:
    name: str
    path: str  # e.g. "/v1/embeddings"
    bodies: Bodies
    concurrency: int
    requests: int
    warmup: int = 8
    method: str = "POST"
    tags: dict[str, Any] = field(default_factory=dict)  # copied into the result (scenario-specific labels)


# --- the client -----------------------------------------------------------------------------------------------


def raw_request(method: str, host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body:
        lines.append("Content-Type: application/json")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection; reopens itself when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 24)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        fields = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if fields.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:
            body = await self.reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await self.reader.readexactly(size + 2))
            if size == 0:
                return b"".join(p[:-2] for p in parts)

    async def close(self) -> None:
        writer, self.writer, self.reader = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def prepare(url: str, cell: HttpCell, headers: dict[str, str], share: int) -> list[bytes]:
    """The raw requests of one load process: built before its measured window."""
    parts = urlsplit(url)
    host = f"{parts.hostname or '127.0.0.1'}:{parts.port or 80}"
    bodies = build_bodies(cell.bodies, cell.warmup + cell.requests, share)
    return [raw_request(cell.method, host, cell.path, headers, body) for body in bodies]


class Load:
    """One load process's share of a cell: its connections, requests and what came back."""

    def __init__(self, url: str, cell: HttpCell, raws: list[bytes]) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cell, self.raws = cell, raws
        self.connections = [Connection(host, port) for _ in range(cell.concurrency)]
        self.latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.errors: list[str] = []

    async def one(self, connection: Connection, index: int, measured: bool) -> None:
        started = time.perf_counter()
        try:
            status, body = await connection.send(self.raws[index])
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            await connection.close()
            self.statuses["no answer"] = self.statuses.get("no answer", 0) + 1
            self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
            return
        elapsed = (time.perf_counter() - started) * 1e3
        if not measured:
            if status >= 300:
                self.errors.append(f"warm-up {status}: {body[:300].decode(errors='replace')}")
            return
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        if 200 <= status < 300:
            self.latencies.append(elapsed)
        else:
            self.errors.append(f"{status}: {body[:300].decode(errors='replace')}")

    async def warm_up(self) -> None:
        """The first `warmup` requests, one at a time: a warm server (and cache, if wanted) for the window."""
        for index in range(self.cell.warmup):
            await self.one(self.connections[0], index, False)

    async def window(self) -> dict[str, Any]:
        counter = iter(range(self.cell.warmup, self.cell.warmup + self.cell.requests))

        async def worker(connection: Connection) -> None:
            for index in counter:  # shared: each request index is sent exactly once
                await self.one(connection, index, True)

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(c) for c in self.connections))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        await asyncio.gather(*(c.close() for c in self.connections))
        return {
            "seconds": seconds,
            "client_cpu_s": cpu,
            "latencies_ms": self.latencies,
            "statuses": self.statuses,
            "errors": self.errors[:5],
            "error_count": len(self.errors),
        }


async def run_share(url: str, cell: HttpCell, raws: list[bytes]) -> dict[str, Any]:
    """Warm-up, "ready" on stdout, then the window at the wall-clock time the driver sends on stdin."""
    load = Load(url, cell, raws)
    await load.warm_up()
    print("ready", flush=True)
    start_at = float(await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline))
    late = time.time() - start_at
    if late < 0:
        await asyncio.sleep(-late)
    return {**await load.window(), "late_s": max(late, 0.0)}


# --- the driver (separate processes) --------------------------------------------------------------------------


def drive_http(
    url: str,
    cells: list[HttpCell],
    headers: dict[str, str] | None = None,
    processes: int = 1,
    margin_s: float = 1.0,
    timeout: float = 1800,
) -> list[dict[str, Any]]:
    """Runs each cell from `processes` load processes (concurrency and requests split between them; each builds
    its own distinct bodies). Once every process has built its bodies and sent its warm-up, all are given one
    wall-clock start time for their measured windows."""
    results = []
    for cell in cells:
        children = [_spawn(url, share, headers or {}, i) for i, share in enumerate(_split(cell, processes))]
        for child, _ in children:  # each says "ready" once its bodies are built and its warm-up answered
            assert child.stdout is not None
            line = child.stdout.readline()
            if line.strip() != "ready":
                _, err = child.communicate(timeout=timeout)
                raise RuntimeError(f"HTTP load generator failed before its window: {line}{err[-3000:]}")
        start_at = time.time() + margin_s
        for child, _ in children:
            assert child.stdin is not None
            child.stdin.write(f"{start_at}\n")
            child.stdin.flush()
        results.append(_merge(cell, [collect_child(child, timeout) for child in children]))
    return results


def _split(cell: HttpCell, processes: int) -> list[HttpCell]:
    n = max(1, min(processes, cell.concurrency))
    return [
        replace(
            cell,
            concurrency=cell.concurrency // n + (i < cell.concurrency % n),
            requests=cell.requests // n + (i < cell.requests % n),
            warmup=cell.warmup if i == 0 else max(1, cell.warmup // n),
        )
        for i in range(n)
    ]


def _spawn(url: str, cell: HttpCell, headers: dict[str, str], share: int) -> tuple[subprocess.Popen[str], str]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    plan = {"url": url, "cell": asdict(cell), "headers": headers, "share": share}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        handle.write(json.dumps(plan))
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.httpload", handle.name],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return child, handle.name


def summarize(latencies_ms: list[float]) -> dict[str, float]:
    values = np.array(latencies_ms or [0.0])  # 0: nothing came back (the errors say why)
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
        "mean_ms": round(float(values.mean()), 2),
    }


def _merge(cell: HttpCell, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = [ms for o in outcomes for ms in o["latencies_ms"]]
    statuses: dict[str, int] = {}
    for outcome in outcomes:
        for status, count in outcome["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    seconds = max(o["seconds"] for o in outcomes)
    ok = len(latencies)
    return {
        "name": cell.name,
        **cell.tags,
        "path": cell.path,
        "concurrency": cell.concurrency,
        "processes": len(outcomes),
        "requests": ok,
        "items_per_request": cell.bodies.per_request,
        "seconds": round(seconds, 3),
        "requests_per_s": round(ok / seconds, 1),
        "items_per_s": round(ok * cell.bodies.per_request / seconds, 1),
        **summarize(latencies),
        "statuses": statuses,
        "errors": sum(o["error_count"] for o in outcomes),
        "first_error": next((e for o in outcomes for e in o["errors"]), ""),
        "late_start_s": round(max(o["late_s"] for o in outcomes), 2),
        "client_cpu_ms_per_request": round(sum(o["client_cpu_s"] for o in outcomes) * 1e3 / max(ok, 1), 3),
    }


def main(argv: list[str]) -> int:
    """One load process: build the bodies, warm up, say "ready", read the window's start time, run, print JSON."""
    with open(argv[0]) as handle:
        plan = json.load(handle)
    raw = plan["cell"]
    cell = HttpCell(**{**raw, "bodies": Bodies.from_dict(raw["bodies"])})
    raws = prepare(plan["url"], cell, plan["headers"], plan["share"])
    print(json.dumps(asyncio.run(run_share(plan["url"], cell, raws))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
