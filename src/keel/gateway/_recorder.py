"""Turns what happened to a request into a request-log record and metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from keel.core import RequestLogSettings, Usage
from keel.gateway._dispatch import DispatchTrace
from keel.providers import Deployment, Provider
from keel.store import RequestRecord, cap_body
from keel.telemetry import GatewayMetrics


class RecordSink(Protocol):
    async def put(self, record: RequestRecord) -> None: ...


def count_usage(deployment: Deployment, provider: Provider, input_text: str, output_text: str) -> Usage:
    """Usage of a call whose provider reported none: counted with the deployment's
    tokenizer when the provider knows one, else estimated at four characters a token."""
    counted_in = provider.count_tokens(deployment, input_text)
    counted_out = provider.count_tokens(deployment, output_text)
    if counted_in is not None and counted_out is not None:
        return Usage(input_tokens=counted_in, output_tokens=counted_out, source="counted")
    return Usage(
        input_tokens=(len(input_text) + 3) // 4, output_tokens=(len(output_text) + 3) // 4, source="estimated"
    )


class Recorder:
    def __init__(
        self, settings: RequestLogSettings, sink: RecordSink | None, metrics: GatewayMetrics
    ) -> None:
        self._settings = settings
        self._sink = sink if settings.enabled else None
        self._metrics = metrics
        self._body_limit = settings.max_body_bytes if settings.bodies else 0
        self._bound: dict[tuple[str, str, int], _BoundMetrics] = {}

    def new_record(self, record_id: str, created_at: datetime, endpoint: str) -> RequestRecord:
        return RequestRecord(
            id=record_id, created_at=created_at, endpoint=endpoint, requested_model="", status=0
        )

    @staticmethod
    def note_trace(record: RequestRecord, trace: DispatchTrace) -> None:
        record.attempts = trace.attempts
        if trace.route is not None:
            record.route = trace.route.name
        if trace.state is not None:
            record.deployment = trace.state.deployment.name
            record.provider = trace.state.deployment.provider

    @staticmethod
    def note_usage(record: RequestRecord, usage: Usage | None) -> None:
        if usage is None:
            return
        record.input_tokens = usage.input_tokens
        record.cached_input_tokens = usage.cached_input_tokens
        record.output_tokens = usage.output_tokens
        record.usage_source = usage.source

    @property
    def keeps_bodies(self) -> bool:
        """Whether bodies go to the request log (callers skip building them if not)."""
        return bool(self._body_limit) and self._sink is not None

    def note_response(self, record: RequestRecord, payload: bytes) -> None:
        if self.keeps_bodies:
            record.response_body, truncated = cap_body(payload.decode("utf-8", "replace"), self._body_limit)
            record.body_truncated = record.body_truncated or truncated

    async def finish(self, record: RequestRecord, request_body: bytes) -> None:
        """Metrics now; the record to the log writer (awaits only if its queue is full)."""
        self._observe(record)
        if self._sink is None:
            return
        if self._body_limit and request_body:
            record.request_body, truncated = cap_body(
                request_body.decode("utf-8", "replace"), self._body_limit
            )
            record.body_truncated = record.body_truncated or truncated
        await self._sink.put(record)

    def _observe(self, record: RequestRecord) -> None:
        model = record.route or "unknown"
        key = (record.endpoint, model, record.status)
        bound = self._bound.get(key)
        if bound is None:
            bound = self._bound[key] = _BoundMetrics(self._metrics, record.endpoint, model, record.status)
        bound.requests.inc()
        if record.error_type:
            self._metrics.errors.labels(record.error_type).inc()
        if record.latency_ms is not None:
            bound.duration.observe(record.latency_ms / 1000)
        if record.ttft_ms is not None:
            bound.ttft.observe(record.ttft_ms / 1000)
        if record.usage_source is not None:
            for (counter, histogram), n in zip(
                bound.tokens,
                (record.input_tokens, record.cached_input_tokens, record.output_tokens),
                strict=True,
            ):
                if n:
                    counter.inc(n)
                    histogram.observe(n)


class _BoundMetrics:
    """Metric children bound to one (endpoint, model, status): ``labels()`` hashes and
    locks on every call, so each combination is looked up once. Cardinality is bounded
    by the configured routes and the statuses the gateway answers with."""

    __slots__ = ("duration", "requests", "tokens", "ttft")

    def __init__(self, m: GatewayMetrics, endpoint: str, model: str, status: int) -> None:
        self.requests = m.requests.labels(endpoint, model, str(status))
        self.duration = m.duration.labels(endpoint, model)
        self.ttft = m.ttft.labels(model)
        self.tokens = [
            (m.tokens.labels(model, kind), m.token_usage.labels(model, kind))
            for kind in ("input", "cached_input", "output")
        ]
