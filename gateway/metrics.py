"""Prometheus metrics of the gateway, in its own registry (apps never share globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lvi.worker import LATENCY_BUCKETS


class GatewayMetrics:
    """Per route (``lvi_http_request_seconds``, filled by the request middleware), per
    workflow, per worker call, circuit breakers, rate limiting and versions created."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.request_seconds = Histogram(
            "lvi_http_request_seconds",
            "HTTP request latency by route.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.workflow_seconds = Histogram(
            "lvi_gateway_workflow_seconds",
            "Time of one workflow (chat, segment, remove, move, ...) by outcome.",
            ["workflow", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.worker_seconds = Histogram(
            "lvi_gateway_worker_call_seconds",
            "Latency of calls to the workers.",
            ["worker", "endpoint", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.worker_calls = Counter(
            "lvi_gateway_worker_calls_total",
            "Calls to the workers.",
            ["worker", "outcome"],
            registry=r,
        )
        self.breaker_open = Gauge(
            "lvi_gateway_circuit_open",
            "1 while a worker's circuit is open.",
            ["worker"],
            registry=r,
        )
        self.versions_created = Counter(
            "lvi_gateway_versions_created_total",
            "Image versions committed.",
            ["operation"],
            registry=r,
        )
        self.rate_limited = Counter(
            "lvi_gateway_rate_limited_total", "Requests refused by the rate limit.", registry=r
        )
        self.idempotent_replays = Counter(
            "lvi_gateway_idempotent_replays_total",
            "Requests answered from an earlier request with the same Idempotency-Key.",
            registry=r,
        )
        self.store_errors = Counter(
            "lvi_gateway_store_errors_total",
            "Redis failures met by requests, by code (store_full: Redis refuses writes).",
            ["code"],
            registry=r,
        )
        self.quota_exceeded = Counter(
            "lvi_gateway_quota_exceeded_total",
            "Requests refused by a per-principal quota, by quota.",
            ["quota"],
            registry=r,
        )
