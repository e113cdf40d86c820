"""OpenTelemetry traces of gateway requests, exported over OTLP/HTTP.

``build_tracing`` returns None unless ``telemetry.otlp_endpoint`` is set; the gateway
then builds its untraced classes, so a gateway without tracing creates no span objects
and checks nothing per request. With an endpoint, each request is a SERVER span named
after the GenAI conventions (``chat gpt-4o``) carrying ``gen_ai.*`` attributes and
Keel's own (``keel.route``, ``keel.request_id``, ``keel.cost_usd`` ...), with child
spans for the guard scans, the cache lookup and each upstream attempt. A W3C
``traceparent`` on the request makes its span a child of the caller's.

OpenTelemetry is an optional dependency (``pip install 'keel[otel]'``), imported only
here and only when tracing is configured. No global tracer provider is set: several
gateways (tests) can live in one process, and an application embedding Keel keeps its
own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from keel.core import MissingPrerequisite, TelemetrySettings
from keel.store import RequestRecord

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span as OtelSpan

# gen_ai.operation.name of each endpoint (GenAI semantic conventions).
OPERATION_NAMES = {"chat.completions": "chat", "completions": "text_completion", "embeddings": "embeddings"}
_PROPAGATED = (b"traceparent", b"tracestate")


class Span(Protocol):
    """What the gateway holds of a span: it goes through ``Tracing`` for the rest."""

    def set_attribute(self, key: str, value: Any) -> None: ...

    def is_recording(self) -> bool: ...


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector endpoint (the signal path added as for
    ``OTEL_EXPORTER_OTLP_ENDPOINT``, unless it is there already)."""
    if endpoint.rstrip("/").endswith("/v1/traces"):
        return endpoint
    return endpoint.rstrip("/") + "/v1/traces"


def build_tracing(settings: TelemetrySettings) -> Tracing | None:
    """The tracer for ``settings``, exporting in batches on a background thread; None
    when no endpoint is configured."""
    if settings.otlp_endpoint is None:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError as exc:
        raise MissingPrerequisite(
            f"telemetry.otlp_endpoint is set, but exporting traces needs {exc.name}: pip install 'keel[otel]'"
        ) from exc
    resource = Resource.create({**settings.resource_attributes, "service.name": settings.service_name})
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio))
    )
    exporter = OTLPSpanExporter(
        endpoint=traces_url(settings.otlp_endpoint), headers=dict(settings.otlp_headers)
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider)


class Tracing:
    """Spans of the gateway's requests, from one ``TracerProvider``."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self._trace = trace
        self._tracer = provider.get_tracer("keel.gateway")
        self._propagator = TraceContextTextMapPropagator()

    # -- spans ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def request(self, endpoint: str, headers: Sequence[tuple[bytes, bytes]]) -> Iterator[Span]:
        """The SERVER span of one request, current for everything done inside it; named
        after the operation until ``finish_request`` knows the model."""
        carrier = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in headers if name in _PROPAGATED
        }
        parent = self._propagator.extract(carrier) if carrier else None
        operation = OPERATION_NAMES.get(endpoint, endpoint)
        with self._tracer.start_as_current_span(
            operation,
            context=parent,
            kind=self._trace.SpanKind.SERVER,
            attributes={"gen_ai.operation.name": operation},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    @contextlib.contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
        """An INTERNAL child of the current span (guard scans, cache lookup)."""
        with self._tracer.start_as_current_span(
            name, attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            yield span

    @contextlib.contextmanager
    def attempt(
        self, deployment: str, model: str, system: str, *, route: str | None, number: int
    ) -> Iterator[Span]:
        """A CLIENT span for one upstream call; ``number`` counts the request's attempts
        from 1 (2 is the first retry, on this deployment or another)."""
        attributes: dict[str, Any] = {
            "gen_ai.request.model": model,
            "gen_ai.provider.name": system,
            "gen_ai.system": system,
            "keel.deployment": deployment,
            "keel.attempt": number,
        }
        if route is not None:
            attributes["keel.route"] = route
        with self._tracer.start_as_current_span(
            f"upstream {deployment}",
            kind=self._trace.SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    # -- what happened --------------------------------------------------------------------

    def fail(
        self, span: Span, error_type: str, message: str | None = None, status: int | None = None
    ) -> None:
        """Mark ``span`` failed (``error.type`` and the ERROR status)."""
        from opentelemetry.trace import Status, StatusCode

        otel: OtelSpan = span  # type: ignore[assignment]
        otel.set_attribute("error.type", error_type)
        if status is not None:
            otel.set_attribute("http.response.status_code", status)
        otel.set_status(Status(StatusCode.ERROR, message))

    def current(self) -> Span:
        """The current span (the request's, between its child spans)."""
        span: Span = self._trace.get_current_span()
        return span

    def finish_request(
        self, span: Span, record: RequestRecord, *, response_model: str | None, system: str | None
    ) -> None:
        """Name the request's span and set what the request log has on it."""
        if not span.is_recording():
            return
        otel: OtelSpan = span  # type: ignore[assignment]
        operation = OPERATION_NAMES.get(record.endpoint, record.endpoint)
        model = record.route or record.requested_model
        if model:
            otel.update_name(f"{operation} {model}")
        attributes: dict[str, Any] = {
            "keel.request_id": record.id,
            "http.response.status_code": record.status,
            "gen_ai.request.model": record.requested_model,
            "keel.stream": record.stream,
        }
        optional: dict[str, Any] = {
            "keel.route": record.route,
            "keel.deployment": record.deployment,
            "keel.provider": record.provider,
            "gen_ai.provider.name": system,
            "gen_ai.system": system,
            "gen_ai.response.model": response_model,
            "keel.team_id": record.team_id,
            "keel.prompt.name": record.prompt_name,
            "keel.prompt.version": record.prompt_version,
            "keel.cache": record.cache_status,
            "keel.attempts": record.attempts or None,
        }
        if record.usage_source is not None:
            optional["gen_ai.usage.input_tokens"] = record.input_tokens
            optional["gen_ai.usage.output_tokens"] = record.output_tokens
        if record.cost_nanos is not None:
            optional["keel.cost_usd"] = record.cost_nanos / 1e9
        if record.ttft_ms is not None:
            optional["keel.time_to_first_token_s"] = record.ttft_ms / 1000
        attributes.update((k, v) for k, v in optional.items() if v is not None)
        otel.set_attributes(attributes)
        error = record.error_type
        # As for HTTP server spans: a client's 4xx is not the server's error, nor is a
        # guard doing its job; a 5xx and a stream broken after its 200 are.
        if record.status >= 500 or (error is not None and record.status < 400 and error != "guard_violation"):
            self.fail(span, error or str(record.status), record.error_message)
        elif error is not None:
            otel.set_attribute("error.type", error)

    # -- life cycle -----------------------------------------------------------------------

    def flush(self, timeout_ms: int = 30_000) -> bool:
        """Export every ended span now (blocking)."""
        return self.provider.force_flush(timeout_ms)

    def shutdown(self) -> None:
        """Export what is left and stop the exporter (blocking: run it in a thread)."""
        self.provider.shutdown()
