"""Metrics (Prometheus) and, later, traces (OpenTelemetry)."""

from keel.telemetry._metrics import CONTENT_TYPE, GatewayMetrics

__all__ = ["CONTENT_TYPE", "GatewayMetrics"]
