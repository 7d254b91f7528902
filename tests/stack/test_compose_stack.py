"""docker-compose.yml's `cpu` profile, running: images built from this repository, a model made by the trainer image,
Redis, the CPU Triton, the gateway and Prometheus in containers (tests/stack/compose.py says what the host-network
run changes). The tests run in file order on one stack; the last one stops Triton.

    make stack-test      # builds the images (scripts/build_images.sh), then runs this file
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from typing import Any

import httpx
import pytest
import yaml

from service.tools.local.redis_server import free_port
from tests.deploy.promql import ALERTS
from tests.deploy.tools import container, one, render
from tests.integration.gateway_support import adapter_file, unique_name
from tests.stack.compose import PROMETHEUS_CONFIG, images
from tests.stack.support import Stack, dashboard_and_alert_metrics, exported_names, png_base64, say

pytestmark = pytest.mark.stack


def inspect(stack: Stack, service: str) -> dict[str, Any]:
    ids = stack.compose.run("ps", "--quiet", service).stdout.split()
    assert len(ids) == 1, ids
    result = subprocess.run(["docker", "inspect", ids[0]], capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout)[0])


def embed_text(client: httpx.Client, text: str, adapter: str | None = None) -> list[float]:
    body: dict[str, Any] = {"input": [text]} | ({"adapter": adapter} if adapter else {})
    response = client.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    return list(response.json()["data"][0]["embedding"])


def test_services_run_as_the_chart_runs_them(stack: Stack) -> None:
    # Non-root, read-only root filesystem, no capabilities: what the chart's securityContext demands of the images.
    for service, uid in (("gateway", "10001"), ("triton-cpu", "1000")):
        container = inspect(stack, service)
        assert container["Config"]["User"].split(":")[0] == uid, container["Config"]["User"]
        assert container["HostConfig"]["ReadonlyRootfs"] is True
        assert container["HostConfig"]["CapDrop"] == ["ALL"]
        assert container["State"]["Health"]["Status"] == "healthy"
    say("gateway (uid 10001) and Triton (uid 1000): read-only, no capabilities, healthy")


def test_readyz_sees_triton_and_redis(stack: Stack) -> None:
    with stack.client() as client:
        response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ready", body
    assert body["triton"] and body["cache"] and body["model"] == "tipsv2-tiny" and body["model_id"] == stack.model_id
    say(f"/readyz: {body['status']}, model {body['model']}")


def test_text_embedding(stack: Stack) -> None:
    with stack.client() as client:
        first = embed_text(client, "a red circle")
        again = embed_text(client, "a red circle")  # from Redis this time
        other = embed_text(client, "a blue square")
    assert len(first) == stack.embed_dim and all(math.isfinite(v) for v in first)
    assert again == first and other != first
    say(f"text embedding: {len(first)} floats, repeated request identical")


def test_image_embedding(stack: Stack) -> None:
    with stack.client() as client:
        response = client.post("/v1/embed/image", json={"images": [png_base64(), png_base64(colour=(20, 200, 40))]})
    assert response.status_code == 200, response.text
    red, green = response.json()["data"]
    for item in (red, green):
        assert len(item["embedding"]) == len(item["embedding_cls2"]) == stack.embed_dim
        assert all(math.isfinite(v) for v in item["embedding"])
    assert red["embedding"] != green["embedding"]
    say(f"image embeddings: CLS1 and CLS2 of {stack.embed_dim} floats for 2 images")


def test_an_uploaded_adapter_survives_a_new_gateway_container(stack: Stack) -> None:
    name = unique_name("stack")
    with stack.client() as client:
        uploaded = client.post(
            "/v1/adapters",
            files={"file": ("a.safetensors", adapter_file(stack.model_id, dim=stack.embed_dim))},
            data={"name": name},
        )
        assert uploaded.status_code == 201, uploaded.text
        activated = client.post(f"/v1/adapters/{name}/activate", json={"version": 1})
        assert activated.status_code == 200, activated.text
        adapted = embed_text(client, "a red circle", adapter=name)
        assert adapted != embed_text(client, "a red circle")

    start = time.monotonic()
    old = inspect(stack, "gateway")["Id"]
    stack.compose.run("up", "--detach", "--no-build", "--pull", "never", "--no-deps", "--force-recreate", "gateway")
    stack.compose.wait_healthy("gateway")
    assert inspect(stack, "gateway")["Id"] != old, "the gateway container was not replaced"
    say(f"gateway container replaced and healthy in {time.monotonic() - start:.1f} s")

    with stack.client() as client:
        listed = client.get(f"/v1/adapters/{name}")
        assert listed.status_code == 200, listed.text
        assert listed.json()["active_version"] == 1
        assert embed_text(client, "a red circle", adapter=name) == adapted
        # Computed now, by Triton's bank reading the store, not from the cache: a text never sent before.
        fresh = "a green triangle"
        assert embed_text(client, fresh, adapter=name) != embed_text(client, fresh)
    say(f"adapter {name}: listed, active and applied after the restart")


def test_prometheus_scrapes_every_target_with_the_rules_loaded(stack: Stack) -> None:
    jobs = {job["job_name"] for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]}
    deadline = time.monotonic() + 60
    while True:  # the replaced gateway's first scrape may still be due
        targets = stack.prometheus("/api/v1/targets")["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        if (set(health) == jobs and set(health.values()) == {"up"}) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(health) == jobs and set(health.values()) == {"up"}, targets

    groups = stack.prometheus("/api/v1/rules")["groups"]
    loaded = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
    expected = {rule["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for rule in g["rules"]}
    assert set(loaded) == expected, sorted(set(loaded) ^ expected)
    assert set(loaded.values()) <= {"ok", "unknown"}, loaded

    # What the dashboards and alerts plot and the two servers export now is what Prometheus has stored.
    exported = exported_names(f"{stack.ports.url('gateway_metrics')}/metrics")
    exported |= exported_names(f"{stack.ports.url('triton_metrics')}/metrics")
    wanted = dashboard_and_alert_metrics() & exported
    # (The gateway container is new since the adapter test: its counters restarted; Triton's adapter bank counted.)
    sure = {"tipsv2_requests_total", "tipsv2_triton_up", "nv_inference_request_success", "tipsv2_adapter_loads_total"}
    assert sure <= wanted, sorted(wanted)
    deadline = time.monotonic() + 30
    while (missing := wanted - set(stack.prometheus("/api/v1/label/__name__/values"))) and time.monotonic() < deadline:
        time.sleep(1)
    assert not missing, f"exported and used by a dashboard or alert, but not in Prometheus: {sorted(missing)}"
    say(f"Prometheus: targets {sorted(health)} up, {len(loaded)} alert rules loaded, {len(wanted)} dashboard metrics")


def test_the_charts_triton_container_serves_from_the_cpu_image(stack: Stack) -> None:
    # The CPU scenario's Triton container as the chart renders it (arguments, environment, user, read-only root, no
    # capabilities, its mounts) run from the image compose runs; only its ports move to free loopback ones.
    deployment = one(render("minimal"), "Deployment", "-triton")
    main, pod = container(deployment, "triton"), deployment["spec"]["template"]["spec"]
    ports = {name: free_port() for name in ("http", "grpc", "metrics")}
    args = [arg for arg in main["args"] if not arg.startswith(("--http-port=", "--grpc-port=", "--metrics-port="))]
    args += [f"--{name}-port={port}" for name, port in ports.items()]
    args += ["--http-address=127.0.0.1", "--grpc-address=127.0.0.1"]
    repository = next(a.split("=", 1)[1] for a in args if a.startswith("--model-repository="))
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    assert "/models" in mounts and repository.startswith("/models/")
    security = pod["securityContext"]
    command = ["docker", "run", "--detach", "--rm", "--network", "host", "--read-only", "--cap-drop", "ALL"]
    command += ["--security-opt", "no-new-privileges", "--user", f"{security['runAsUser']}:{security['runAsGroup']}"]
    command += ["--tmpfs", "/tmp", "--shm-size", "512m"]
    command += ["--volume", f"{stack.model_repository}:{repository}:ro"]
    command += [f"--env={e['name']}={e['value']}" for e in main.get("env", [])]
    image = images()["TRITON_CPU_IMAGE"]
    started = subprocess.run([*command, image, *args], capture_output=True, text=True, check=True)
    container_id = started.stdout.strip()
    try:
        start = time.monotonic()
        probes = [main[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")]
        while any(_status(f"http://127.0.0.1:{ports['http']}{path}") != 200 for path in probes):
            if time.monotonic() - start > 120:
                logs = subprocess.run(["docker", "logs", container_id], capture_output=True, text=True).stderr
                raise AssertionError(f"the chart's Triton container is not ready after 120 s:\n{logs[-3000:]}")
            time.sleep(1)
    finally:
        subprocess.run(["docker", "rm", "--force", container_id], capture_output=True, check=False)
    took = time.monotonic() - start
    say(f"the chart's Triton container ({' '.join(main['args'][1:])}) ready in the CPU image in {took:.1f} s")


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def test_triton_stopped_fails_fast_and_fires_its_alert(stack: Stack) -> None:
    stack.compose.run("stop", "--timeout", "20", "triton-cpu")
    stopped = time.monotonic()
    with stack.client() as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["triton"] is False, ready.text
        refused = client.post("/v1/embeddings", json={"input": ["never embedded"]})
        assert refused.status_code == 503 and "retry-after" in refused.headers, refused.text
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    rule = next(r for r in rules if r.get("alert") == "TipsV2TritonNotReady")
    hold = _seconds(rule["for"])
    say(
        f"Triton stopped: /readyz and requests 503 (Retry-After); waiting for TipsV2TritonNotReady (for: {rule['for']})"
    )
    state = ""
    while time.monotonic() - stopped < hold + 90:
        alerts = stack.prometheus("/api/v1/alerts")["alerts"]
        state = next((a["state"] for a in alerts if a["labels"]["alertname"] == "TipsV2TritonNotReady"), "")
        if state == "firing":
            break
        time.sleep(2)
    assert state == "firing", f"TipsV2TritonNotReady is {state or 'inactive'} {time.monotonic() - stopped:.0f} s after"
    say(f"TipsV2TritonNotReady firing {time.monotonic() - stopped:.0f} s after Triton stopped")


def _seconds(duration: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(duration[:-1]) * units[duration[-1]]
