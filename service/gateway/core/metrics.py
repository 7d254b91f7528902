"""The gateway's metric family: one prefix (`tipsv2_`), names and buckets defined here and nowhere else.

Labels are bounded: endpoints are route templates, tenants come from configuration, never from request content;
adapter names never appear in labels.

Several worker processes (`service.gateway.workers`) share one exposition through prometheus_client's multiprocess mode
(`PROMETHEUS_MULTIPROC_DIR` set before the workers start): each writes its samples to files there, and `exposition`
sums them; gauges say how (`multiprocess_mode`).
"""

from __future__ import annotations

import os
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

# 10 µs … ~60 s, geometric (×2): covers cache hits (sub-ms) to large image batches.
LATENCY_BUCKETS = tuple(1e-5 * 2**i for i in range(23))
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tipsv2_requests_total",
            "HTTP requests by endpoint and status code",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "tipsv2_request_duration_seconds",
            "HTTP request latency by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inflight = Gauge(
            "tipsv2_inflight_requests", "Inference requests being served", registry=r, multiprocess_mode="livesum"
        )
        self.rejected = Counter(
            "tipsv2_overload_rejections_total", "Requests refused by the in-flight bound", registry=r
        )
        self.items = Counter(
            "tipsv2_embedded_items_total",
            "Texts or images embedded, by modality and tenant",
            ["modality", "tenant"],
            registry=r,
        )
        self.batch_size = Histogram(
            "tipsv2_request_items", "Items per inference request", ["modality"], buckets=BATCH_BUCKETS, registry=r
        )
        self.cache_hits = Counter("tipsv2_cache_hits_total", "Embedding cache hits", ["modality", "tenant"], registry=r)
        self.cache_misses = Counter(
            "tipsv2_cache_misses_total", "Embedding cache misses", ["modality", "tenant"], registry=r
        )
        self.cache_errors = Counter(
            "tipsv2_cache_errors_total", "Redis operations that failed or timed out", ["operation"], registry=r
        )
        self.cache_up = Gauge(
            "tipsv2_cache_up",
            "1 when the Redis cache answered its last operation",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.triton_duration = Histogram(
            "tipsv2_triton_request_duration_seconds",
            "Latency of calls to Triton",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # Cross-request batching: the size of each call to Triton, in rows and in gateway requests packed into it.
        self.triton_call_rows = Histogram(
            "tipsv2_triton_call_rows", "Rows per call to Triton", ["model"], buckets=BATCH_BUCKETS, registry=r
        )
        self.triton_call_requests = Histogram(
            "tipsv2_triton_call_requests",
            "Gateway requests packed into one call to Triton",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.triton_failures = Counter(
            "tipsv2_triton_failures_total", "Failed calls to Triton", ["model", "reason"], registry=r
        )
        self.triton_up = Gauge(
            "tipsv2_triton_up",
            "1 when Triton answered its last readiness check",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.auth_failures = Counter(
            "tipsv2_auth_failures_total", "Requests refused for a missing or bad API key", registry=r
        )
        # Tenancy: per-tenant rate limits (Redis). When Redis cannot be asked the gateway admits the request
        # (fails open) and counts it here, so an outage of the limiter is visible rather than silent.
        self.rate_limited = Counter(
            "tipsv2_rate_limited_total", "Requests refused with 429 by the per-tenant limit", ["tenant"], registry=r
        )
        self.rate_limit_unchecked = Counter(
            "tipsv2_rate_limit_unchecked_total",
            "Requests admitted without a rate-limit check because Redis was unavailable (fail open)",
            registry=r,
        )
        # Adapters: uploads by outcome (accepted, invalid, too_large, error), activations (rollbacks and roll-forwards
        # by `POST /v1/adapters/{name}/activate`), deletions, and the hot-swap notices between replicas.
        self.adapter_uploads = Counter(
            "tipsv2_adapter_uploads_total", "Adapter uploads by tenant and outcome", ["tenant", "outcome"], registry=r
        )
        self.adapter_activations = Counter(
            "tipsv2_adapter_activations_total", "Adapter versions activated by request", ["tenant"], registry=r
        )
        self.adapter_deletions = Counter(
            "tipsv2_adapter_deletions_total", "Adapters or adapter versions deleted", ["tenant"], registry=r
        )
        self.adapter_notices = Counter(
            "tipsv2_adapter_notices_total",
            "Hot-swap notices on the Redis channel (published, publish_failed, received)",
            ["event"],
            registry=r,
        )
        self.adapter_registry_reloads = Counter(
            "tipsv2_adapter_registry_reloads_total",
            "Adapter manifests re-read from the store after a notice or a changed file",
            registry=r,
        )
        # Zero-shot work done in the gateway (numpy) after Triton answered.
        self.zeroshot_duration = Histogram(
            "tipsv2_zeroshot_postprocess_seconds",
            "Gateway-side zero-shot math (classification scores, segmentation maps)",
            ["task"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.zeroshot_labels = Histogram(
            "tipsv2_zeroshot_labels", "Labels per zero-shot request", ["task"], buckets=BATCH_BUCKETS, registry=r
        )

    def exposition(self) -> bytes:
        """The text exposition of /metrics: this process's registry, or every worker's samples in multiprocess mode."""
        return generate_latest(multiprocess_registry() if multiprocess() else self.registry)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def multiprocess_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def serve_multiprocess_metrics(port: int, host: str = "0.0.0.0") -> WSGIServer:
    """Serves every worker's samples on host:`port` (a thread of the process that supervises the workers)."""
    server, _thread = start_http_server(port, addr=host, registry=multiprocess_registry())
    return server
