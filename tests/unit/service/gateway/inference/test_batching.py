"""Cross-request batching: requests that meet in a lane share calls, each gets exactly its own rows back, an idle
lane sends at once, and a failed call fails only its own requests (the real tritonserver path is in
tests/integration/test_batching.py)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from service.gateway.core.errors import ErrorKind, GatewayError
from service.gateway.inference.batching import Arrays, CallBatcher

OUT = ("y",)


class Recorder:
    """A fake Triton: y = x * 10 + adapter number, per row; records every call; can hold calls until released."""

    def __init__(self, fail: dict[int, GatewayError] | None = None, bad_adapter: str | None = None) -> None:
        self.calls: list[tuple[str, int, list[str]]] = []
        self.fail = fail or {}
        self.bad_adapter = bad_adapter
        self.gate: asyncio.Event | None = None

    async def __call__(self, model: str, arrays: Arrays, adapters: list[str], outputs: tuple[str, ...]) -> Arrays:
        index = len(self.calls)
        self.calls.append((model, len(adapters), list(adapters)))
        if self.gate is not None:
            await self.gate.wait()
        if index in self.fail:
            raise self.fail[index]
        if self.bad_adapter in adapters:
            raise GatewayError(ErrorKind.NOT_FOUND, f"unknown adapter {self.bad_adapter!r}", code="adapter_not_found")
        offsets = np.array([float(a[1:] or 0) if a else 0.0 for a in adapters], dtype=np.float32)
        return {"y": arrays["x"].astype(np.float32) * 10 + offsets[:, None]}


def rows(start: int, count: int, width: int = 3) -> np.ndarray:
    return np.arange(start * width, (start + count) * width, dtype=np.int32).reshape(count, width)


async def test_an_idle_lane_sends_at_once_alone() -> None:
    fake = Recorder()
    batcher = CallBatcher(fake, max_in_flight=2)
    x = rows(0, 1)
    out = await asyncio.wait_for(batcher.submit("m", {"x": x}, ["a3"], OUT, max_rows=8), timeout=0.05)
    assert np.array_equal(out["y"], x * 10 + 3)
    assert [n for _, n, _ in fake.calls] == [1]


async def test_requests_that_wait_for_a_busy_lane_leave_together_with_their_own_rows() -> None:
    fake = Recorder()
    fake.gate = asyncio.Event()
    batcher = CallBatcher(fake, max_in_flight=1)
    first = asyncio.create_task(batcher.submit("m", {"x": rows(0, 1)}, [""], OUT, max_rows=64))
    await asyncio.sleep(0.01)  # the first call is out and held: the lane is busy
    waiting = [
        asyncio.create_task(batcher.submit("m", {"x": rows(10 * i, 1 + i % 3)}, [f"a{i}"] * (1 + i % 3), OUT, 64))
        for i in range(1, 11)
    ]
    await asyncio.sleep(0.01)
    assert len(fake.calls) == 1
    fake.gate.set()
    results = await asyncio.gather(first, *waiting)
    assert [n for _, n, _ in fake.calls] == [1, sum(1 + i % 3 for i in range(1, 11))]  # ten requests, one call
    for i, result in enumerate(results[1:], start=1):
        assert np.array_equal(result["y"], rows(10 * i, 1 + i % 3) * 10 + i)


async def test_a_call_never_exceeds_max_rows_and_large_requests_come_back_in_order() -> None:
    fake = Recorder()
    batcher = CallBatcher(fake, max_in_flight=1)
    x = rows(0, 20)
    out = await batcher.submit("m", {"x": x}, ["a1"] * 20, OUT, max_rows=8)
    assert np.array_equal(out["y"], x * 10 + 1)
    assert max(n for _, n, _ in fake.calls) <= 8 and sum(n for _, n, _ in fake.calls) == 20


async def test_different_models_shapes_or_outputs_never_share_a_call() -> None:
    fake = Recorder()
    batcher = CallBatcher(fake, max_in_flight=1)
    await asyncio.gather(
        batcher.submit("m", {"x": rows(0, 1, 3)}, [""], OUT, 8),
        batcher.submit("m", {"x": rows(0, 1, 4)}, [""], OUT, 8),
        batcher.submit("other", {"x": rows(0, 1, 3)}, [""], OUT, 8),
    )
    assert sorted(n for _, n, _ in fake.calls) == [1, 1, 1]


async def test_a_failed_call_fails_only_the_requests_in_it() -> None:
    fake = Recorder(fail={0: GatewayError(ErrorKind.BACKEND_TIMEOUT, "deadline", code="triton_timeout")})
    fake.gate = asyncio.Event()
    batcher = CallBatcher(fake, max_in_flight=1)
    in_failed_call = asyncio.create_task(batcher.submit("m", {"x": rows(0, 1)}, [""], OUT, 8))
    await asyncio.sleep(0.01)
    later = [asyncio.create_task(batcher.submit("m", {"x": rows(i, 1)}, [""], OUT, 8)) for i in range(1, 5)]
    await asyncio.sleep(0.01)
    fake.gate.set()
    with pytest.raises(GatewayError, match="deadline"):
        await in_failed_call
    for i, task in enumerate(later, start=1):
        assert np.array_equal((await task)["y"], rows(i, 1) * 10)


async def test_one_requests_unknown_adapter_does_not_fail_the_requests_it_shared_a_call_with() -> None:
    fake = Recorder(bad_adapter="a9")
    batcher = CallBatcher(fake, max_in_flight=1)
    results = await asyncio.gather(
        *(batcher.submit("m", {"x": rows(i, 1)}, [f"a{i}"], OUT, 64) for i in range(1, 10)),
        return_exceptions=True,
    )
    assert isinstance(results[8], GatewayError) and results[8].code == "adapter_not_found"
    for i, result in enumerate(results[:8], start=1):
        assert not isinstance(result, BaseException)
        assert np.array_equal(result["y"], rows(i, 1) * 10 + i)


async def test_a_transport_failure_is_not_retried_request_by_request() -> None:
    unavailable = GatewayError(ErrorKind.BACKEND_UNAVAILABLE, "down", code="triton_unavailable")
    fake = Recorder(fail={0: unavailable})
    batcher = CallBatcher(fake, max_in_flight=1)
    results = await asyncio.gather(
        *(batcher.submit("m", {"x": rows(i, 1)}, [""], OUT, 64) for i in range(5)), return_exceptions=True
    )
    assert all(r is unavailable for r in results)
    assert len(fake.calls) == 1


async def test_closing_fails_what_still_waits() -> None:
    fake = Recorder()
    fake.gate = asyncio.Event()
    batcher = CallBatcher(fake, max_in_flight=1)
    held = asyncio.create_task(batcher.submit("m", {"x": rows(0, 1)}, [""], OUT, 8))
    await asyncio.sleep(0.01)
    waiting = asyncio.create_task(batcher.submit("m", {"x": rows(1, 1)}, [""], OUT, 8))
    await asyncio.sleep(0.01)
    await batcher.close()
    with pytest.raises(GatewayError):
        await waiting
    held.cancel()
