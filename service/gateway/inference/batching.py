"""Cross-request batching: the rows of concurrent requests bound for the same Triton model, input shape and outputs
go to Triton in one call, and each request gets back exactly its own rows.

Texts arrive one per HTTP request; sent one per gRPC call, every call pays the gateway's and Triton's fixed costs
(serialisation, the channel, the ensemble's scheduling, each Python-backend step) for a single row. Here requests
join a lane per (model, per-row input shapes, outputs); a lane sends at once while it has fewer than `max_in_flight`
calls outstanding, so an idle gateway adds no wait (beyond the current event-loop turn, which lets requests that
arrived together leave together). When the lane is busy, parts wait for a call to return and the next call takes
all of them, up to the model's max batch size: the window grows with the load by itself, and no timer is tuned.

Rows carry their own adapter ids (the model's `adapter` input is per row), so tenants and adapters mix freely in a
call. A failed call fails the requests in that call and no others; when the failure may be one request's fault (an
adapter Triton does not know, a refused input), each part of the call is retried alone, so one bad request cannot
fail the requests it happened to share a call with.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from service.gateway.core.errors import ErrorKind, GatewayError

Arrays = dict[str, np.ndarray]
# (model, inputs, adapter id per row, outputs) -> outputs; raises GatewayError.
Call = Callable[[str, Arrays, list[str], tuple[str, ...]], Awaitable[Arrays]]
# Failures that may come from one request's rows rather than from Triton or the link: retried part by part.
ISOLATED = frozenset({ErrorKind.NOT_FOUND, ErrorKind.INVALID_REQUEST, ErrorKind.BACKEND_ERROR})


@dataclass(frozen=True)
class LaneKey:
    model: str
    outputs: tuple[str, ...]
    inputs: tuple[tuple[str, tuple[int, ...], str], ...]  # (name, shape of one row, dtype) per input


@dataclass
class Part:
    """Some rows of one request (at most a call's worth) and where their result goes."""

    arrays: Arrays
    adapters: list[str]
    future: asyncio.Future[Arrays]

    @property
    def rows(self) -> int:
        return len(self.adapters)


@dataclass
class Lane:
    key: LaneKey
    max_rows: int
    pending: deque[Part] = field(default_factory=deque)
    in_flight: int = 0
    flush_scheduled: bool = False


class CallBatcher:
    def __init__(self, call: Call, max_in_flight: int, observe: Callable[[str, int, int], None] | None = None) -> None:
        """`max_in_flight`: calls per lane before requests wait to go together (0: no limit, no waiting).
        `observe(model, rows, requests)` is told the size of every call."""
        self.call = call
        self.max_in_flight = max_in_flight
        self.observe = observe
        self._lanes: dict[LaneKey, Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(
        self, model: str, arrays: Arrays, adapters: list[str], outputs: tuple[str, ...], max_rows: int
    ) -> Arrays:
        """Rows of one request (any number; split into parts of at most `max_rows`) -> their outputs, in order."""
        rows = len(adapters)
        key = LaneKey(model, outputs, tuple((n, a.shape[1:], a.dtype.str) for n, a in arrays.items()))
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(key, max(1, max_rows))
        loop = asyncio.get_running_loop()
        parts = []
        for start in range(0, rows, lane.max_rows):
            stop = start + lane.max_rows
            part = Part({n: a[start:stop] for n, a in arrays.items()}, adapters[start:stop], loop.create_future())
            lane.pending.append(part)
            parts.append(part)
        self._schedule(lane)
        results = await asyncio.gather(*(p.future for p in parts), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        if len(results) == 1:
            return results[0]  # type: ignore[return-value]
        return {name: np.concatenate([r[name] for r in results]) for name in outputs}  # type: ignore[index]

    def _schedule(self, lane: Lane) -> None:
        # One event-loop turn of grace: every request whose bytes arrived in this turn joins the same call.
        if not lane.flush_scheduled:
            lane.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush, lane)

    def _flush(self, lane: Lane) -> None:
        lane.flush_scheduled = False
        while lane.pending and (self.max_in_flight <= 0 or lane.in_flight < self.max_in_flight):
            parts = [lane.pending.popleft()]
            rows = parts[0].rows
            while lane.pending and rows + lane.pending[0].rows <= lane.max_rows:
                part = lane.pending.popleft()
                parts.append(part)
                rows += part.rows
            lane.in_flight += 1
            task = asyncio.get_running_loop().create_task(self._run(lane, parts))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, lane: Lane, parts: list[Part]) -> None:
        try:
            await self._send(lane.key, parts, retry_alone=True)
        finally:
            lane.in_flight -= 1
            if lane.pending:
                self._flush(lane)

    async def _send(self, key: LaneKey, parts: list[Part], retry_alone: bool) -> None:
        live = [p for p in parts if not p.future.done()]  # a cancelled request needs no rows
        if not live:
            return
        arrays = {name: _concat([p.arrays[name] for p in live]) for name, _, _ in key.inputs}
        adapters = [a for p in live for a in p.adapters]
        if self.observe is not None:
            self.observe(key.model, len(adapters), len(live))
        try:
            outputs = await self.call(key.model, arrays, adapters, key.outputs)
        except GatewayError as exc:
            if retry_alone and len(live) > 1 and exc.kind in ISOLATED:
                await asyncio.gather(*(self._send(key, [p], retry_alone=False) for p in live))
            else:
                _fail(live, exc)
            return
        except Exception as exc:  # a bug must reach the requests, not hang them
            _fail(live, exc)
            return
        start = 0
        for part in live:
            stop = start + part.rows
            if not part.future.done():
                part.future.set_result({name: outputs[name][start:stop] for name in key.outputs})
            start = stop

    async def close(self) -> None:
        closing = GatewayError(ErrorKind.BACKEND_UNAVAILABLE, "the gateway is shutting down", retry_after=1)
        for lane in self._lanes.values():
            _fail(list(lane.pending), closing)
            lane.pending.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _fail(parts: list[Part], exc: BaseException) -> None:
    for part in parts:
        if not part.future.done():
            part.future.set_exception(exc)
