"""Triton faults under load, against a gateway process: killed (SIGKILL) and restarted, requests fail fast with 503
and Retry-After, /readyz follows, and the same gateway serves again within moments of Triton being back; stalled
(SIGSTOP), the client deadline answers 504, the in-flight bound refuses the excess at once with 503, and nothing
piles up (the in-flight gauge returns to 0, the gateway's memory stays flat)."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.gateway.core.config import TritonSettings
from service.gateway.inference.triton import channel_args
from service.tools.local.redis_server import RedisServer
from tests.integration.gateway_support import ACME, metric_value, tenant_settings
from tests.reliability.load import Load, Outcome, embed_text
from tests.reliability.processes import ControlledTriton, GatewayServer, rss_kib

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEADLINE_S = 1.5  # TIPS_TRITON__TIMEOUT_S of this module's gateway
MAX_INFLIGHT = 4
FAIL_FAST_S = 1.0  # a request while Triton is dead must not wait longer than this
RECOVERY_S = 2.0  # from Triton ready again to the gateway serving again (no gateway restart)
OUTAGE_S = 10.0


@pytest.fixture
def gateway(
    triton_ctl: ControlledTriton, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path, tmp_path: Path
) -> Iterator[GatewayServer]:
    settings = tenant_settings(triton_ctl.server, redis_server.url, tokenizer_path, adapter_store)
    env = {"TIPS_TRITON__TIMEOUT_S": str(DEADLINE_S), "TIPS_LIMITS__MAX_INFLIGHT": str(MAX_INFLIGHT)}
    with GatewayServer(settings, tmp_path, **env) as server:
        yield server


def readiness(url: str) -> int:
    return httpx.get(f"{url}/readyz", timeout=10).status_code


def wait_until(condition, timeout: float) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not within {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - started


def test_killed_triton_fails_fast_with_retry_after_and_recovers_without_a_gateway_restart(
    gateway: GatewayServer, triton_ctl: ControlledTriton
) -> None:
    with Load(gateway.url, embed_text(ACME, "triton fault"), threads=3, pause_s=0.02) as load:
        load.wait_for(20)
        killed = time.monotonic()
        triton_ctl.kill()
        load.wait_for(60)
        assert readiness(gateway.url) == 503
        # Long enough for gRPC's default reconnect backoff (1 s, x1.6 per attempt) to grow past a few seconds.
        time.sleep(max(0.0, killed + OUTAGE_S - time.monotonic()))
        down_until = time.monotonic()
        triton_ctl.restart()
        back = time.monotonic()
        wait_until(lambda: any(o.ok for o in load.between(back, float("inf"))), 30)
        load.wait_for(20)
        assert readiness(gateway.url) == 200
    before = [o for o in load.between(0, killed) if o.sent + o.latency_s < killed]  # answered before the kill
    down = load.between(killed + 0.05, down_until)  # sent once the kill had landed
    first_ok = min(o.sent for o in load.between(back, float("inf")) if o.ok)
    recovery_s = first_ok - back
    after = load.between(first_ok, float("inf"))
    print(
        f"before {len(before)}, while down {len(down)} (slowest {max(o.latency_s for o in down) * 1000:.0f} ms), "
        f"after {len(after)}; served again {recovery_s * 1000:.0f} ms after Triton was ready"
    )
    assert before and all(o.ok for o in before), _summary(before)
    assert len(down) >= 30
    assert {(o.status, o.code) for o in down} == {(503, "triton_unavailable")}, _summary(down)
    assert all(o.retry_after is not None and int(o.retry_after) > 0 for o in down)
    assert max(o.latency_s for o in down) < FAIL_FAST_S, _summary(down)
    # While Triton starts, requests are refused (503) rather than failed (5xx of another kind); then served.
    restart = load.between(down_until, first_ok)
    assert {o.status for o in restart} <= {200, 503}, _summary(restart)
    assert recovery_s <= RECOVERY_S, f"gateway served again {recovery_s:.1f} s after Triton was back"
    assert after and all(o.ok for o in after), _summary(after)


def test_stalled_triton_hits_the_deadline_and_the_inflight_bound_without_pile_up(
    gateway: GatewayServer, triton_ctl: ControlledTriton
) -> None:
    client = httpx.Client(base_url=gateway.url, headers=ACME, timeout=DEADLINE_S * 4)
    assert client.post("/v1/embeddings", json={"input": "warm"}).status_code == 200
    baseline_kib = rss_kib(gateway.pid)

    def one(i: int) -> Outcome:
        sent = time.monotonic()
        response = client.post("/v1/embeddings", json={"input": f"stalled {i} {sent}"})
        code = None if response.status_code == 200 else response.json()["error"]["code"]
        return Outcome(sent, time.monotonic() - sent, response.status_code, code, response.headers.get("retry-after"))

    triton_ctl.pause()
    try:
        waves = []
        for wave in range(4):
            with concurrent.futures.ThreadPoolExecutor(12) as pool:
                waves.append(list(pool.map(one, range(wave * 48, (wave + 1) * 48))))
            assert metric_value(client.get("/metrics").text, "tipsv2_inflight_requests") == 0
        grown_kib = rss_kib(gateway.pid) - baseline_kib
    finally:
        triton_ctl.resume()
    outcomes = [o for wave in waves for o in wave]
    timed_out = [o for o in outcomes if o.status == 504]
    refused = [o for o in outcomes if o.status == 503]
    assert len(timed_out) + len(refused) == len(outcomes), _summary(outcomes)
    assert {o.code for o in timed_out} == {"triton_timeout"} and {o.code for o in refused} == {"overloaded"}
    assert all(DEADLINE_S <= o.latency_s < DEADLINE_S + 1.5 for o in timed_out), _summary(timed_out)
    assert refused and all(o.retry_after == "1" and o.latency_s < 1.0 for o in refused), _summary(refused)
    print(
        f"{len(timed_out)} timed out after {min(o.latency_s for o in timed_out):.2f}-"
        f"{max(o.latency_s for o in timed_out):.2f} s, {len(refused)} refused at the bound within "
        f"{max(o.latency_s for o in refused) * 1000:.0f} ms; RSS grew {grown_kib} KiB"
    )
    assert grown_kib < 16 << 10, f"gateway RSS grew by {grown_kib} KiB while Triton was stalled"
    served = wait_until(lambda: client.post("/v1/embeddings", json={"input": "resumed"}).status_code == 200, 10)
    assert served < 2.0


def _summary(outcomes: list[Outcome]) -> str:
    kinds: dict[tuple[int, str | None], int] = {}
    for o in outcomes:
        kinds[(o.status, o.code)] = kinds.get((o.status, o.code), 0) + 1
    slowest = max((o.latency_s for o in outcomes), default=0.0)
    return f"{kinds}, slowest {slowest:.2f} s"


def test_the_triton_channel_reconnects_at_most_the_configured_backoff_apart() -> None:
    args = dict(channel_args(TritonSettings(reconnect_backoff_s=0.5)))
    assert args["grpc.max_reconnect_backoff_ms"] == 500 and args["grpc.initial_reconnect_backoff_ms"] <= 500
    assert args["grpc.max_receive_message_length"] == args["grpc.max_send_message_length"] > 1 << 30
