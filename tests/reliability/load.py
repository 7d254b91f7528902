"""Closed-loop background load for fault-injection tests: threads send requests until stopped and record every
outcome (when it was sent, how long it took, its status, error code and Retry-After)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

# (client, sequence number) -> response; each worker thread has its own client.
Send = Callable[[httpx.Client, int], httpx.Response]


@dataclass(frozen=True)
class Outcome:
    sent: float  # time.monotonic() when the request was sent
    latency_s: float
    status: int  # 0: no HTTP response (connection refused, client timeout)
    code: str | None  # the error body's code
    retry_after: str | None

    @property
    def ok(self) -> bool:
        return self.status == 200


class Load:
    def __init__(self, url: str, send: Send, threads: int = 4, timeout_s: float = 30.0, pause_s: float = 0.0) -> None:
        self.url, self.send, self.timeout_s, self.pause_s = url, send, timeout_s, pause_s
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._counter = itertools.count()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout_s) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    response = self.send(client, next(self._counter))
                    outcome = Outcome(
                        sent, time.monotonic() - sent, response.status_code, _code(response), _retry(response)
                    )
                except httpx.HTTPError:
                    outcome = Outcome(sent, time.monotonic() - sent, 0, None, None)
                with self._lock:
                    self.outcomes.append(outcome)
                if self.pause_s:
                    time.sleep(self.pause_s)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout_s + 5)

    def between(self, start: float, end: float) -> list[Outcome]:
        """Outcomes of requests sent in [start, end)."""
        with self._lock:
            return [o for o in self.outcomes if start <= o.sent < end]

    def count(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def wait_for(self, more: int, timeout: float = 30.0) -> None:
        """Blocks until `more` further outcomes have been recorded."""
        target, deadline = self.count() + more, time.monotonic() + timeout
        while self.count() < target:
            assert time.monotonic() < deadline, f"load made no progress ({self.count()} of {target} outcomes)"
            time.sleep(0.02)


def _code(response: httpx.Response) -> str | None:
    if response.status_code == 200:
        return None
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "not-json"


def _retry(response: httpx.Response) -> str | None:
    value = response.headers.get("retry-after")
    return str(value) if value is not None else None


def embed_text(headers: dict[str, str], prefix: str, adapter: str | None = None) -> Send:
    """A fresh text per request (no cache hit hides a failure), optionally with an adapter."""

    def send(client: httpx.Client, index: int) -> httpx.Response:
        body: dict[str, object] = {"input": f"{prefix} {index} {time.monotonic_ns()}"}
        if adapter:
            body["adapter"] = adapter
        return client.post("/v1/embeddings", json=body, headers=headers)

    return send
