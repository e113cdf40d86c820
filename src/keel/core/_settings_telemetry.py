"""Settings of tracing (``telemetry:`` in keel.yaml): where OpenTelemetry traces go.

Prometheus metrics need no settings: ``GET /metrics`` always serves them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TelemetrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The collector's OTLP/HTTP endpoint (http://collector:4318, as
    # OTEL_EXPORTER_OTLP_ENDPOINT: /v1/traces is added unless the URL ends with it).
    # None: no tracer is built and requests create no spans at all.
    otlp_endpoint: str | None = None
    # Sent with every export (an API key of a hosted collector).
    otlp_headers: dict[str, str] = Field(default_factory=dict)
    service_name: str = "keel"
    # Added to the resource of every span (deployment.environment: prod, ...).
    resource_attributes: dict[str, str] = Field(default_factory=dict)
    # Share of requests traced (head sampling); a sampled incoming traceparent is followed.
    sample_ratio: float = Field(1.0, ge=0, le=1)

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http(s) URL such as http://collector:4318, got {value!r}")
        return value
