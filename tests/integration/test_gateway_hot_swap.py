"""Hot swap: a version uploaded or activated through one gateway is served by another gateway process within one
second, under concurrent load, with no failed request and no Triton model reloaded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.tools.local.redis_server import RedisServer
from service.tools.local.tritonserver import TritonServer
from tests.integration.gateway_support import (
    ACME,
    GatewayProcess,
    adapter_file,
    open_gateway,
    served_model_id,
    tenant_settings,
    triton_index,
    triton_stats,
    unique_name,
    upload,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SWAP_DEADLINE_S = 1.0


@dataclass
class Outcome:
    sent: float
    status: int
    version: int | None


class Load:
    """Threads sending adapter requests to a gateway until stopped, recording when each was sent and what came back."""

    def __init__(self, url: str, adapter: str, threads: int = 3) -> None:
        self.url, self.adapter = url, adapter
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, worker: int) -> None:
        with httpx.Client(base_url=self.url, headers=ACME, timeout=30) as client:
            count = 0
            while not self._stop.is_set():
                count += 1
                sent = time.monotonic()
                payload = {"input": f"load {worker} {count}", "adapter": self.adapter}
                try:
                    response = client.post("/v1/embeddings", json=payload)
                    version = (response.json().get("adapter") or {}).get("version")
                    outcome = Outcome(sent, response.status_code, version)
                except httpx.HTTPError:
                    outcome = Outcome(sent, 0, None)
                with self._lock:
                    self.outcomes.append(outcome)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def served_after(self, moment: float) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.sent >= moment]


def wait_for_version(load: Load, after: float, version: int, timeout: float = 5.0) -> float:
    """Seconds from `after` until the first request sent after it was answered with `version`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = [o.sent for o in load.served_after(after) if o.version == version]
        if seen:
            return min(seen) - after
        time.sleep(0.02)
    raise AssertionError(f"version {version} not served within {timeout} s")


@pytest.fixture
def gateways(
    triton: TritonServer, redis_server: RedisServer, tokenizer_path: Path, adapter_store: Path, tmp_path: Path
) -> Iterator[tuple[TestClient, GatewayProcess]]:
    settings = tenant_settings(triton, redis_server.url, tokenizer_path, adapter_store)
    # The second gateway trusts its cached manifests for 30 s: only the Redis notice can make it see a swap in time.
    with (
        open_gateway(settings) as first,
        GatewayProcess(settings, tmp_path, TIPS_ADAPTERS__REVALIDATE_S="30") as second,
    ):
        yield first, second


def test_swap_reaches_a_second_gateway_within_a_second_without_failures_or_reloads(
    gateways: tuple[TestClient, GatewayProcess], triton: TritonServer
) -> None:
    first, second = gateways
    model_id, name = served_model_id(first), unique_name("swap")
    upload(first, ACME, name, adapter_file(model_id, seed=1))
    with Load(second.url, name) as load:
        wait_for_version(load, time.monotonic(), 1)
        index_before, stats_before = triton_index(triton), triton_stats(triton)

        assert upload(first, ACME, name, adapter_file(model_id, seed=2))["active_version"] == 2
        acknowledged = time.monotonic()
        forward = wait_for_version(load, acknowledged, 2)
        time.sleep(SWAP_DEADLINE_S + 0.3)

        rollback_sent = time.monotonic()
        rollback = first.post(f"/v1/adapters/{name}/activate", json={"version": 1}, headers=ACME)
        assert rollback.status_code == 200 and rollback.json()["active_version"] == 1
        rolled_back = time.monotonic()
        backward = wait_for_version(load, rolled_back, 1)
        time.sleep(SWAP_DEADLINE_S + 0.3)

    outcomes = load.outcomes
    assert len(outcomes) >= 20, "the load must keep requests in flight throughout the swaps"
    assert [o for o in outcomes if o.status != 200] == []
    assert forward <= SWAP_DEADLINE_S and backward <= SWAP_DEADLINE_S, (forward, backward)
    print(f"{len(outcomes)} requests; swap seen after {forward * 1000:.0f} ms, rollback after {backward * 1000:.0f} ms")
    late_v1 = [o for o in outcomes if acknowledged + SWAP_DEADLINE_S <= o.sent < rollback_sent and o.version != 2]
    late_v2 = [o for o in outcomes if o.sent >= rolled_back + SWAP_DEADLINE_S and o.version != 1]
    assert late_v1 == [] and late_v2 == []
    # Nothing was reloaded: the repository index is unchanged, and statistics (which restart on a reload) only grew.
    assert triton_index(triton) == index_before
    stats_after = triton_stats(triton)
    assert all(stats_after[model] >= count for model, count in stats_before.items())
    assert stats_after["tipsv2_text_trunk"] > stats_before["tipsv2_text_trunk"]
