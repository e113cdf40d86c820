"""Metrics (Prometheus, at ``GET /metrics``) and traces (OpenTelemetry over OTLP/HTTP)."""

from keel.telemetry._collectors import BREAKER_STATES, BreakerSource, BudgetReading, BudgetSource
from keel.telemetry._metrics import CONTENT_TYPE, GatewayMetrics
from keel.telemetry._tracing import OPERATION_NAMES, Span, Tracing, build_tracing, traces_url

__all__ = [
    "BREAKER_STATES",
    "CONTENT_TYPE",
    "OPERATION_NAMES",
    "BreakerSource",
    "BudgetReading",
    "BudgetSource",
    "GatewayMetrics",
    "Span",
    "Tracing",
    "build_tracing",
    "traces_url",
]
