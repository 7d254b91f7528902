"""The gateway's metric family: one prefix (`tipsv2_`), names and buckets defined here and nowhere else.

Labels are bounded: endpoints are route templates, tenants come from configuration, never from request content;
adapter names never appear in labels.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
        self.inflight = Gauge("tipsv2_inflight_requests", "Inference requests being served", registry=r)
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
        self.cache_up = Gauge("tipsv2_cache_up", "1 when the Redis cache answered its last operation", registry=r)
        self.triton_duration = Histogram(
            "tipsv2_triton_request_duration_seconds",
            "Latency of calls to Triton",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.triton_failures = Counter(
            "tipsv2_triton_failures_total", "Failed calls to Triton", ["model", "reason"], registry=r
        )
        self.triton_up = Gauge("tipsv2_triton_up", "1 when Triton answered its last readiness check", registry=r)
        self.auth_failures = Counter(
            "tipsv2_auth_failures_total", "Requests refused for a missing or bad API key", registry=r
        )
