"""OpenTelemetry traces of requests through a real gateway, exported over OTLP/HTTP to a
receiver on a real port and decoded from protobuf: span names, parent/child links,
``gen_ai.*`` and ``keel.*`` attributes, W3C trace context; and no tracer at all
without an endpoint."""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import Tracer

from keel.core import (
    GuardSettings,
    MissingPrerequisite,
    PolicySettings,
    PriceSettings,
    RouteCacheSettings,
    SpendSettings,
    TelemetrySettings,
)
from keel.gateway import Gateway
from keel.gateway._dispatch import Dispatcher
from keel.gateway._openai_api import OpenAIEndpoint
from keel.telemetry import build_tracing, traces_url
from tests.fakes import FakeDeployment, Fault
from tests.gateway.conftest import GatewayFactory, RunningGateway
from tests.telemetry.otlp_receiver import OtlpReceiver, ReceivedSpan

PRICED = SpendSettings(
    prices=[
        PriceSettings(model="fake-chat", token_type="input", usd_per_million=Decimal("1")),
        PriceSettings(model="fake-chat", token_type="output", usd_per_million=Decimal("2")),
    ]
)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
EMAIL = "jane.doe@example.com"


def _chat(gw: RunningGateway, text: str = "hello there", **headers: str) -> httpx.Response:
    response = httpx.post(
        f"{gw.base_url}/chat/completions",
        json={"model": "gpt-test", "messages": [{"role": "user", "content": text}]},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response


def _exported(gw: RunningGateway, otlp: OtlpReceiver, count: int) -> list[ReceivedSpan]:
    """The spans of every request answered so far (each span ends when its ASGI call does,
    just after the client has its answer)."""
    gw.flush_log()
    tracing = gw.app.gateway.tracing
    assert tracing is not None
    assert tracing.flush()
    return otlp.wait_for(count)


def _by_name(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    named = {s.name: s for s in spans}
    assert len(named) == len(spans), [s.name for s in spans]
    return named


def test_a_request_is_a_server_span_with_gen_ai_attributes_continuing_the_callers_trace(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, otlp: OtlpReceiver
) -> None:
    telemetry = TelemetrySettings(
        otlp_endpoint=otlp.url,
        otlp_headers={"x-collector-key": "k-123"},
        service_name="keel-test",
        resource_attributes={"deployment.environment": "test"},
    )
    gw = gateway_factory({"gpt-test": [upstream]}, telemetry=telemetry, spend=PRICED)
    response = _chat(gw, traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01")
    spans = _by_name(_exported(gw, otlp, 2))
    assert set(spans) == {"chat gpt-test", f"upstream {upstream.name}"}
    server, attempt = spans["chat gpt-test"], spans[f"upstream {upstream.name}"]

    # The caller's trace goes on: same trace id, the caller's span is the parent.
    assert (server.kind, server.trace_id, server.parent_span_id) == ("SERVER", TRACE_ID, PARENT_ID)
    assert (attempt.kind, attempt.trace_id, attempt.parent_span_id) == ("CLIENT", TRACE_ID, server.span_id)
    assert server.start_ns <= attempt.start_ns <= attempt.end_ns <= server.end_ns

    [record] = gw.records()
    assert record.cost_nanos == 2 * 1000 + 3 * 2000
    attrs = server.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "gpt-test"
    assert attrs["gen_ai.response.model"] == "fake-chat"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (2, 3)
    assert attrs["gen_ai.provider.name"] == attrs["gen_ai.system"] == "openai"
    assert attrs["keel.route"] == "gpt-test"
    assert attrs["keel.deployment"] == upstream.name
    assert attrs["keel.request_id"] == response.headers["x-request-id"] == record.id
    assert attrs["keel.cost_usd"] == pytest.approx(record.cost_nanos / 1e9)
    assert attrs["http.response.status_code"] == 200
    assert attrs["keel.attempts"] == 1
    assert server.status == "UNSET"

    assert attempt.attributes["keel.attempt"] == 1
    assert attempt.attributes["keel.deployment"] == upstream.name
    assert attempt.attributes["gen_ai.request.model"] == "fake-chat"
    assert attempt.attributes["http.response.status_code"] == 200

    assert server.resource["service.name"] == "keel-test"
    assert server.resource["deployment.environment"] == "test"
    assert all(h.get("x-collector-key") == "k-123" for h in otlp.headers)


def test_each_upstream_attempt_is_a_span_and_a_failed_one_says_why(
    gateway_factory: GatewayFactory, make_deployment: Any, otlp: OtlpReceiver
) -> None:
    broken, backup = make_deployment(), make_deployment()
    broken.set_default(Fault(status=500))
    gw = gateway_factory(
        {"gpt-test": [broken], "backup": [backup]},
        fallbacks={"gpt-test": ["backup"]},
        telemetry=TelemetrySettings(otlp_endpoint=otlp.url),
    )
    _chat(gw)
    # Three tries of the broken deployment (max_attempts), then the fallback route.
    spans = _exported(gw, otlp, 5)
    [server] = [s for s in spans if s.kind == "SERVER"]
    attempts = sorted((s for s in spans if s.kind == "CLIENT"), key=lambda s: s.attributes["keel.attempt"])
    assert [a.attributes["keel.attempt"] for a in attempts] == [1, 2, 3, 4]
    assert all(a.parent_span_id == server.span_id for a in attempts)
    failed, answered = attempts[:3], attempts[3]
    for a in failed:
        assert (a.name, a.status) == (f"upstream {broken.name}", "ERROR")
        assert a.attributes["http.response.status_code"] == 500
        assert a.attributes["error.type"] == "server_error"  # ProviderError.kind of a 5xx
        assert a.attributes["keel.route"] == "gpt-test"
    assert (answered.name, answered.status) == (f"upstream {backup.name}", "UNSET")
    assert answered.attributes["keel.route"] == "backup"
    assert server.attributes["keel.attempts"] == 4
    assert server.attributes["keel.route"] == "backup"
    assert server.status == "UNSET"  # the client got its answer


def test_an_upstream_failure_marks_the_request_span_failed(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, otlp: OtlpReceiver
) -> None:
    upstream.set_default(Fault(status=503))
    gw = gateway_factory({"gpt-test": [upstream]}, telemetry=TelemetrySettings(otlp_endpoint=otlp.url))
    response = httpx.post(
        f"{gw.base_url}/chat/completions",
        json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code >= 500
    spans = _exported(gw, otlp, 4)
    [server] = [s for s in spans if s.kind == "SERVER"]
    assert server.status == "ERROR"
    assert server.attributes["http.response.status_code"] == response.status_code
    assert server.attributes["error.type"] == "server_error"


def test_guard_scans_and_the_cache_lookup_are_child_spans(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, otlp: OtlpReceiver
) -> None:
    guards = GuardSettings(
        policies={"strict": PolicySettings(action="redact", input=["pii"], output=["secrets"])}
    )
    gw = gateway_factory(
        {"gpt-test": [upstream]},
        guards=guards,
        route_options={
            "gpt-test": {"guard_policy": "strict", "cache": RouteCacheSettings(exact=True, ttl=60)}
        },
        telemetry=TelemetrySettings(otlp_endpoint=otlp.url),
    )
    _chat(gw, f"mail {EMAIL}")
    first = _by_name(_exported(gw, otlp, 5))
    assert set(first) == {
        "chat gpt-test",
        "guard input",
        "cache lookup",
        f"upstream {upstream.name}",
        "guard output",
    }
    server = first["chat gpt-test"]
    for name in ("guard input", "cache lookup", f"upstream {upstream.name}", "guard output"):
        assert first[name].parent_span_id == server.span_id, name
        assert first[name].trace_id == server.trace_id
    # In pipeline order.
    order = sorted(first.values(), key=lambda s: s.start_ns)
    assert [s.name for s in order][1:] == [
        "guard input",
        "cache lookup",
        f"upstream {upstream.name}",
        "guard output",
    ]
    assert first["guard input"].attributes == {"keel.guard.policy": "strict", "keel.guard.decision": "redact"}
    assert first["guard output"].attributes["keel.guard.decision"] == "allow"
    assert first["cache lookup"].attributes["keel.cache.result"] == "miss"
    assert server.attributes["keel.cache"] == "miss"

    otlp.spans.clear()
    _chat(gw, f"mail {EMAIL}")
    second = _by_name(_exported(gw, otlp, 4))
    # A hit: no upstream call, and the cached answer still goes through the output policy.
    assert set(second) == {"chat gpt-test", "guard input", "cache lookup", "guard output"}
    assert second["cache lookup"].attributes["keel.cache.result"] == "hit"
    assert second["chat gpt-test"].attributes["keel.cache"] == "hit"
    assert second["chat gpt-test"].trace_id != server.trace_id  # no traceparent: a new trace


def test_a_blocked_request_has_its_guard_span_and_is_not_an_error_of_the_gateway(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, otlp: OtlpReceiver
) -> None:
    guards = GuardSettings(policies={"strict": PolicySettings(action="block", input=["pii"])})
    gw = gateway_factory(
        {"gpt-test": [upstream]},
        guards=guards,
        route_options={"gpt-test": {"guard_policy": "strict"}},
        telemetry=TelemetrySettings(otlp_endpoint=otlp.url),
    )
    response = httpx.post(
        f"{gw.base_url}/chat/completions",
        json={"model": "gpt-test", "messages": [{"role": "user", "content": f"mail {EMAIL}"}]},
    )
    assert response.status_code == 400
    spans = _by_name(_exported(gw, otlp, 2))
    assert set(spans) == {"chat gpt-test", "guard input"}
    assert spans["guard input"].attributes["keel.guard.decision"] == "block"
    server = spans["chat gpt-test"]
    assert server.status == "UNSET"  # a 4xx is the client's, not the server's error
    assert server.attributes["http.response.status_code"] == 400
    assert "error.type" in server.attributes
    assert upstream.requests() == []


def test_a_stream_span_lasts_the_whole_stream_and_has_its_time_to_first_token(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, otlp: OtlpReceiver
) -> None:
    upstream.set_default(Fault(chunk_delay=0.02))
    gw = gateway_factory({"gpt-test": [upstream]}, telemetry=TelemetrySettings(otlp_endpoint=otlp.url))
    with httpx.stream(
        "POST",
        f"{gw.base_url}/chat/completions",
        json={
            "model": "gpt-test",
            "stream": True,
            "messages": [{"role": "user", "content": "one two three"}],
        },
    ) as response:
        body = response.read().decode()
    assert body.rstrip().endswith("data: [DONE]")
    spans = _exported(gw, otlp, 2)
    [server] = [s for s in spans if s.kind == "SERVER"]
    [attempt] = [s for s in spans if s.kind == "CLIENT"]
    assert server.attributes["keel.stream"] is True
    ttft = server.attributes["keel.time_to_first_token_s"]
    duration = (server.end_ns - server.start_ns) / 1e9
    assert 0 < ttft < duration
    # The attempt opened the stream; the request span also covers relaying it (3 chunks, 20 ms apart).
    assert attempt.end_ns < server.end_ns
    assert duration >= 0.04
    assert server.attributes["gen_ai.usage.output_tokens"] == 4


def test_head_sampling_drops_unsampled_requests_but_follows_a_sampled_caller(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, otlp: OtlpReceiver
) -> None:
    gw = gateway_factory(
        {"gpt-test": [upstream]}, telemetry=TelemetrySettings(otlp_endpoint=otlp.url, sample_ratio=0)
    )
    for _ in range(3):
        _chat(gw)
    _chat(gw, traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01")
    spans = _exported(gw, otlp, 2)
    assert {s.trace_id for s in spans} == {TRACE_ID}
    assert len(spans) == 2


def test_without_an_endpoint_no_tracer_exists_and_no_span_is_started(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    real = Tracer.start_span

    def counting(self: Tracer, name: str, *args: Any, **kwargs: Any) -> Any:
        started.append(name)
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(Tracer, "start_span", counting)
    gw = gateway_factory({"gpt-test": [upstream]})
    gateway: Gateway = gw.app.gateway
    assert gateway.tracing is None
    assert type(gateway.dispatcher) is Dispatcher
    endpoints = [e for path, e in gateway.data_plane().items() if "guard" not in path]
    assert endpoints
    assert all(type(endpoint) is OpenAIEndpoint for endpoint in endpoints)
    for _ in range(3):
        _chat(gw)
    gw.flush_log()
    assert started == []


def test_an_endpoint_without_opentelemetry_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(MissingPrerequisite, match=r"pip install 'keel\[otel\]'"):
        build_tracing(TelemetrySettings(otlp_endpoint="http://collector:4318"))
    assert build_tracing(TelemetrySettings()) is None


def test_the_traces_url_and_endpoint_validation() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("https://otlp.example.com/v1/traces") == "https://otlp.example.com/v1/traces"
    with pytest.raises(ValueError, match="http"):
        TelemetrySettings(otlp_endpoint="collector:4318")
