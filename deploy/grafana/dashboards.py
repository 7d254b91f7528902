"""Generates the Grafana dashboards of TIPSv2 (gateway, Triton) into helm/tipsv2/files/dashboards/.

    python deploy/grafana/dashboards.py          # rewrite the JSON files
    python deploy/grafana/dashboards.py --check  # exit 1 when the committed files differ (the tests run this)

Panels are declared as data (title, unit, queries) so the PromQL can be reviewed in one place; the JSON is what
Grafana's sidecar (Helm) and file provisioning (compose) load. Every metric used here is checked against live
scrapes of the gateway and the real tritonserver in tests/deploy/test_metric_names.py, and every dashboard against
Grafana's own schema types (@grafana/schema, with each panel's options typed by its plugin) in
tests/deploy/test_dashboard_schema.py. Panel options are written out whole, as Grafana saves them, rather than left
to its defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parents[2] / "helm" / "tipsv2" / "files" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"  # Grafana picks a window of at least four scrape intervals
API = 'endpoint=~"/v1/.*"'  # API endpoints; health probes and /metrics would drown the latency panels


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    queries: tuple[Query, ...]
    description: str = ""
    kind: str = "timeseries"  # or "stat"
    width: int = 12


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    tags: tuple[str, ...] = field(default=("tipsv2",))


def quantiles(metric: str, by: str, legend: str, selector: str = "") -> tuple[Query, ...]:
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{selector}}}[{RATE}])))",
            f"{legend} p{round(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    )


def per_request(counter_us: str) -> str:
    """Average microseconds per successful request of a cumulative Triton duration counter, in seconds."""
    return (
        f"sum by (model) (rate({counter_us}[{RATE}])) / 1e6"
        f" / clamp_min(sum by (model) (rate(nv_inference_request_success[{RATE}])), 1e-9)"
    )


GATEWAY = Dashboard(
    uid="tipsv2-gateway",
    title="TIPSv2 / Gateway",
    description="Requests, latency per endpoint, errors, cache, adapters and per-tenant limits of the TIPSv2 gateway.",
    rows=(
        Row(
            "Traffic and errors",
            (
                Panel(
                    "Requests per second by endpoint",
                    "reqps",
                    (Query(f"sum by (endpoint) (rate(tipsv2_requests_total{{{API}}}[{RATE}]))", "{{endpoint}}"),),
                ),
                Panel(
                    "Errors per second by status",
                    "reqps",
                    (
                        Query(
                            f'sum by (status) (rate(tipsv2_requests_total{{status=~"[45].."}}[{RATE}]))',
                            "{{status}}",
                        ),
                    ),
                    "4xx are refused requests (bad input, auth, 429 limits); 5xx are failures of the service.",
                ),
                Panel(
                    "5xx ratio",
                    "percentunit",
                    (
                        Query(
                            f'sum(rate(tipsv2_requests_total{{status=~"5.."}}[{RATE}]))'
                            f" / clamp_min(sum(rate(tipsv2_requests_total[{RATE}])), 1e-9)",
                            "5xx",
                        ),
                    ),
                    "The TipsV2GatewayHighErrorRate alert fires above 5% for 5 minutes.",
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Dependencies up (gateway's view)",
                    "bool",
                    (
                        Query("min(tipsv2_triton_up)", "Triton ready"),
                        Query("min(tipsv2_cache_up)", "Redis cache"),
                    ),
                    "1 = up. Triton down: requests fail fast with 503. Cache down: requests are served uncached.",
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "In flight and refused at the bound",
                    "short",
                    (
                        Query("sum(tipsv2_inflight_requests)", "in flight"),
                        Query(f"sum(rate(tipsv2_overload_rejections_total[{RATE}]))", "refused/s (503)"),
                    ),
                ),
            ),
        ),
        Row(
            "Latency",
            (
                Panel(
                    "Latency per endpoint (p50, p95, p99)",
                    "s",
                    quantiles("tipsv2_request_duration_seconds", "endpoint", "{{endpoint}}", API),
                    width=24,
                ),
                Panel(
                    "Triton call latency per model (p50, p95, p99)",
                    "s",
                    quantiles("tipsv2_triton_request_duration_seconds", "model", "{{model}}"),
                    "Time of the gateway's gRPC calls; the rest of the endpoint latency is the gateway's own work.",
                ),
                Panel(
                    "Items per request (p50, p99)",
                    "short",
                    tuple(
                        Query(
                            f"histogram_quantile({q}, sum by (modality, le) "
                            f"(rate(tipsv2_request_items_bucket[{RATE}])))",
                            f"{{{{modality}}}} p{round(q * 100)}",
                        )
                        for q in (0.5, 0.99)
                    ),
                ),
            ),
        ),
        Row(
            "Cache",
            (
                Panel(
                    "Cache hit ratio by modality",
                    "percentunit",
                    (
                        Query(
                            f"sum by (modality) (rate(tipsv2_cache_hits_total[{RATE}])) / clamp_min("
                            f"sum by (modality) (rate(tipsv2_cache_hits_total[{RATE}]))"
                            f" + sum by (modality) (rate(tipsv2_cache_misses_total[{RATE}])), 1e-9)",
                            "{{modality}}",
                        ),
                    ),
                ),
                Panel(
                    "Cache errors per second by operation",
                    "ops",
                    (Query(f"sum by (operation) (rate(tipsv2_cache_errors_total[{RATE}]))", "{{operation}}"),),
                    "Redis operations that failed or timed out (each counts as a miss).",
                ),
            ),
        ),
        Row(
            "Adapters",
            (
                Panel(
                    "Adapter uploads by outcome",
                    "ops",
                    (Query(f"sum by (outcome) (rate(tipsv2_adapter_uploads_total[{RATE}]))", "{{outcome}}"),),
                ),
                Panel(
                    "Adapter swaps: activations and hot-swap notices",
                    "ops",
                    (
                        Query(
                            f"sum by (tenant) (rate(tipsv2_adapter_activations_total[{RATE}]))", "activate {{tenant}}"
                        ),
                        Query(f"sum by (event) (rate(tipsv2_adapter_notices_total[{RATE}]))", "notice {{event}}"),
                    ),
                ),
                Panel(
                    "Adapter loads and evictions in Triton's banks",
                    "ops",
                    (
                        Query(f"sum by (model) (rate(tipsv2_adapter_loads_total[{RATE}]))", "loads {{model}}"),
                        Query(f"sum by (model) (rate(tipsv2_adapter_evictions_total[{RATE}]))", "evictions {{model}}"),
                    ),
                    "A load reads an adapter from the store on its first use; evictions at capacity (LRU) cause "
                    "reloads: raise the bank capacity when both stay high.",
                ),
                Panel(
                    "Mean adapter load time",
                    "s",
                    (
                        Query(
                            f"sum by (model) (rate(tipsv2_adapter_load_seconds_total[{RATE}]))"
                            f" / clamp_min(sum by (model) (rate(tipsv2_adapter_loads_total[{RATE}])), 1e-9)",
                            "{{model}}",
                        ),
                    ),
                    "What the first request with an adapter not yet in the bank waits for, on average.",
                    width=6,
                ),
                Panel(
                    "Adapters resident in the banks",
                    "short",
                    (Query("sum by (model) (tipsv2_adapter_bank_size)", "{{model}}"),),
                    width=6,
                ),
            ),
        ),
        Row(
            "Tenants",
            (
                Panel(
                    "Rate-limited requests per tenant (429)",
                    "reqps",
                    (Query(f"sum by (tenant) (rate(tipsv2_rate_limited_total[{RATE}]))", "{{tenant}}"),),
                ),
                Panel(
                    "Items embedded per tenant",
                    "ops",
                    (
                        Query(
                            f"sum by (tenant, modality) (rate(tipsv2_embedded_items_total[{RATE}]))",
                            "{{tenant}} {{modality}}",
                        ),
                    ),
                ),
                Panel(
                    "Cache hits per tenant",
                    "ops",
                    (Query(f"sum by (tenant) (rate(tipsv2_cache_hits_total[{RATE}]))", "{{tenant}}"),),
                ),
                Panel(
                    "Authentication failures",
                    "reqps",
                    (Query(f"sum(rate(tipsv2_auth_failures_total[{RATE}]))", "missing or bad key"),),
                ),
            ),
        ),
    ),
)

TRITON = Dashboard(
    uid="tipsv2-triton",
    title="TIPSv2 / Triton",
    description="Triton serving the TIPSv2 models: throughput, queue vs compute time, batching, queue depth, GPU.",
    rows=(
        Row(
            "Throughput",
            (
                Panel(
                    "Requests per second by model",
                    "reqps",
                    (
                        Query(f"sum by (model) (rate(nv_inference_request_success[{RATE}]))", "ok {{model}}"),
                        Query(f"sum by (model) (rate(nv_inference_request_failure[{RATE}]))", "failed {{model}}"),
                    ),
                ),
                Panel(
                    "Triton instances serving",
                    "short",
                    (Query("count(count by (instance) (nv_inference_count))", "instances"),),
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Pending requests by model",
                    "short",
                    (Query("sum by (model) (nv_inference_pending_request_count)", "{{model}}"),),
                    "Requests waiting in Triton's queues: a steady climb means too little capacity.",
                    width=6,
                ),
            ),
        ),
        Row(
            "Time per request",
            (
                Panel(
                    "Queue vs compute time per request",
                    "s",
                    (
                        Query(per_request("nv_inference_queue_duration_us"), "queue {{model}}"),
                        Query(per_request("nv_inference_compute_infer_duration_us"), "compute {{model}}"),
                        Query(per_request("nv_inference_compute_input_duration_us"), "input {{model}}"),
                        Query(per_request("nv_inference_compute_output_duration_us"), "output {{model}}"),
                    ),
                    "Queue time growing while compute time stays flat: add replicas (the Triton HPA's signal).",
                    width=24,
                ),
                Panel(
                    "Queue : compute ratio",
                    "short",
                    (
                        Query(
                            f"sum by (model) (rate(nv_inference_queue_duration_us[{RATE}]))"
                            f" / clamp_min(sum by (model) (rate(nv_inference_compute_infer_duration_us[{RATE}])), 1)",
                            "{{model}}",
                        ),
                    ),
                ),
                Panel(
                    "Embedding stage time per adapted row",
                    "s",
                    (
                        Query(
                            f"sum by (model) (rate(tipsv2_embed_stage_seconds_total[{RATE}]))", "stage s/s {{model}}"
                        ),
                        Query(f"sum by (model) (rate(tipsv2_adapter_rows_total[{RATE}]))", "adapted rows/s {{model}}"),
                    ),
                    "Seconds per second spent in the embedding stages (adapter banks) and rows run with an adapter.",
                ),
            ),
        ),
        Row(
            "Batching",
            (
                Panel(
                    "Average batch size by model",
                    "short",
                    (
                        Query(
                            f"sum by (model) (rate(nv_inference_count[{RATE}]))"
                            f" / clamp_min(sum by (model) (rate(nv_inference_exec_count[{RATE}])), 1e-9)",
                            "{{model}}",
                        ),
                    ),
                    "Inferences per execution: dynamic batching at work when above 1.",
                ),
                Panel(
                    "Executions per second by model",
                    "ops",
                    (Query(f"sum by (model) (rate(nv_inference_exec_count[{RATE}]))", "{{model}}"),),
                ),
            ),
        ),
        Row(
            "Devices",
            (
                Panel(
                    "GPU utilisation",
                    "percentunit",
                    (Query("avg by (instance, gpu_uuid) (nv_gpu_utilization)", "{{instance}} {{gpu_uuid}}"),),
                    "Exported by Triton on GPU nodes only (empty for CPU deployments). Not a scaling signal: the "
                    "queue-time panels are (GPU utilisation is noisy).",
                ),
                Panel(
                    "CPU utilisation and memory of Triton",
                    "percentunit",
                    (
                        Query("avg by (instance) (nv_cpu_utilization)", "cpu {{instance}}"),
                        Query(
                            "sum by (instance) (nv_cpu_memory_used_bytes)"
                            " / sum by (instance) (nv_cpu_memory_total_bytes)",
                            "memory {{instance}}",
                        ),
                    ),
                ),
            ),
        ),
    ),
)

DASHBOARDS = (GATEWAY, TRITON)


def panel_options(kind: str) -> dict[str, object]:
    """The plugin's whole options object (timeseries or stat), as Grafana 11 saves it."""
    if kind == "timeseries":
        return {
            "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    if kind == "stat":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "auto",
            "textMode": "value_and_name",
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "wideLayout": True,
            "showPercentChange": False,
            "percentChangeColorMode": "standard",
        }
    raise ValueError(f"no options written for panel type {kind!r}")


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, object]:
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": panel_options(panel.kind),
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": q.expr, "legendFormat": q.legend}
            for i, q in enumerate(panel.queries)
        ],
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, object]:
    panels: list[dict[str, object]] = []
    y = 0
    for row in dashboard.rows:
        panels.append(
            {
                "id": len(panels) + 1,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        x = 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y = 0, y + 8
            panels.append(panel_json(panel, len(panels) + 1, x, y))
            x += panel.width
        y += 8
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": list(dashboard.tags),
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    # Grafana's schema requires text and value; "default" is the default Prometheus data source of
                    # whichever Grafana loads the dashboard (compose's, or kube-prometheus-stack's), whatever its uid.
                    "current": {"selected": True, "text": "default", "value": "default"},
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"{d.uid}.json": json.dumps(dashboard_json(d), indent=2) + "\n" for d in DASHBOARDS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when the files on disk are not up to date")
    args = parser.parse_args()
    stale = []
    for name, text in render().items():
        path = OUT_DIR / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        sys.stderr.write("stale dashboards (run python deploy/grafana/dashboards.py):\n  " + "\n  ".join(stale) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
