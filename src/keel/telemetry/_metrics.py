"""Prometheus metrics of the gateway.

Names follow the OpenTelemetry GenAI conventions where one exists
(``gen_ai_client_operation_duration_seconds``, ``gen_ai_client_token_usage``,
``gen_ai_server_time_to_first_token_seconds``) and are ``keel_*`` otherwise. Every label
has bounded cardinality: route names and deployment names come from configuration,
never from the request (an unknown model is counted under ``model="unknown"``).

Each ``GatewayMetrics`` owns its ``CollectorRegistry`` so that several gateways (tests,
benchmarks) can live in one process.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Latency buckets from 5 ms to 2 min: LLM calls are slow and long-tailed.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 120)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "keel_requests",
            "Client requests handled, by endpoint, model and HTTP status.",
            ("endpoint", "model", "status"),
            registry=r,
        )
        self.errors = Counter(
            "keel_errors", "Requests that ended in an error, by error type.", ("type",), registry=r
        )
        self.duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Whole request duration as the client sees it.",
            ("gen_ai_operation_name", "gen_ai_request_model"),
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time from request to the first streamed token.",
            ("gen_ai_request_model",),
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per request, by token type (input, cached_input, output).",
            ("gen_ai_request_model", "gen_ai_token_type"),
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "keel_tokens", "Tokens processed, by model and token type.", ("model", "type"), registry=r
        )
        self.upstream_attempts = Counter(
            "keel_upstream_attempts",
            "Upstream calls, by deployment and outcome.",
            ("deployment", "outcome"),
            registry=r,
        )
        self.breaker_open = Gauge(
            "keel_breaker_open",
            "1 while a deployment's circuit breaker is open.",
            ("deployment",),
            registry=r,
        )
        # Labels come from configuration (policy names, scanner labels) and three verdicts.
        self.guard_verdicts = Counter(
            "keel_guard_verdicts",
            "Guardrail scanner verdicts (pass, flag, block), by policy and scanner.",
            ("policy", "scanner", "verdict"),
            registry=r,
        )
        self.in_flight = Gauge("keel_in_flight_requests", "Requests being handled now.", registry=r)
        self.log_queue_depth = Gauge(
            "keel_request_log_queue_depth", "Records waiting for the request log writer.", registry=r
        )
        self.log_written = Gauge(
            "keel_request_log_written", "Records the request log writer has stored.", registry=r
        )

    def watch_log_writer(self, depth: Callable[[], float], written: Callable[[], float]) -> None:
        """Read the writer's queue depth and count at scrape time (no per-request cost)."""
        self.log_queue_depth.set_function(depth)
        self.log_written.set_function(written)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
