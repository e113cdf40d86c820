"""``GET /metrics`` of a real gateway after real traffic, read with Prometheus' own text
parser: the GenAI-convention histograms, cost, cache, guards, breakers and budgets have
the values the traffic implies, and no label carries a key or an end user."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from keel.core import (
    AccessSettings,
    BreakerPolicy,
    GuardSettings,
    PolicySettings,
    PriceSettings,
    RetryPolicy,
    RouteCacheSettings,
    SpendSettings,
)
from keel.spend import list_budgets
from keel.telemetry import BudgetReading
from tests.fakes import FakeDeployment, Fault
from tests.gateway.conftest import GatewayFactory, RunningGateway

INPUT_NANOS, OUTPUT_NANOS = 1000, 2000  # per token, at $1 and $2 per million
PRICED = SpendSettings(
    prices=[
        PriceSettings(model="fake-chat", token_type="input", usd_per_million=Decimal("1")),
        PriceSettings(model="fake-chat", token_type="output", usd_per_million=Decimal("2")),
    ]
)
API_KEY = "sk-proj-4fQ2nX8vLr7TzKp1WmB3yHc9DsE6uJa0GiV5oRt2"


class Scrape:
    """One ``/metrics`` response, parsed."""

    def __init__(self, gw: RunningGateway) -> None:
        gw.flush_log()
        response = httpx.get(f"{gw.url}/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        self.text = response.text
        self.families = {f.name: f for f in text_string_to_metric_families(self.text)}
        self.samples = {
            (s.name, frozenset(s.labels.items())): s.value for f in self.families.values() for s in f.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, frozenset(labels.items()))]

    def get(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def label_values(self) -> set[str]:
        return {v for _, labels in self.samples for _, v in labels}


def _chat(gw: RunningGateway, text: str, *, key: str = "sk-client", **body: Any) -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/chat/completions",
        json={
            "model": body.pop("model", "gpt-test"),
            "messages": [{"role": "user", "content": text}],
            **body,
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_traffic_shows_in_the_gen_ai_and_keel_metrics_with_the_right_values(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory(
        {"gpt-test": [upstream]},
        route_options={"gpt-test": {"cache": RouteCacheSettings(exact=True, ttl=60)}},
        spend=PRICED,
    )
    assert _chat(gw, "what is cached").status_code == 200  # miss
    hit = _chat(gw, "what is cached")
    assert hit.headers["x-keel-cache"] == "hit"
    with httpx.stream(
        "POST",
        f"{gw.base_url}/chat/completions",
        json={
            "model": "gpt-test",
            "stream": True,
            "messages": [{"role": "user", "content": "one two three"}],
        },
    ) as stream:
        stream.read()
    assert _chat(gw, "hi", model="no-such-model").status_code == 404

    m = Scrape(gw)
    records = gw.records()
    served = [r for r in records if r.route == "gpt-test"]
    [missing] = [r for r in records if r.status == 404]
    paid = [r for r in served if r.cache_status == "miss"]
    [cached] = [r for r in served if r.cache_status == "hit"]
    assert len(paid) == 2 and all(r.cost_nanos for r in paid)

    chat = {"endpoint": "chat.completions"}
    assert m.value("keel_requests_total", **chat, model="gpt-test", status="200") == 3
    assert m.value("keel_requests_total", **chat, model="unknown", status="404") == 1
    assert missing.error_type is not None
    assert m.value("keel_errors_total", type=missing.error_type) == 1

    model = {"gen_ai_request_model": "gpt-test"}
    assert (
        m.value(
            "gen_ai_client_operation_duration_seconds_count",
            gen_ai_operation_name="chat.completions",
            **model,
        )
        == 3
    )
    assert m.value(
        "gen_ai_client_operation_duration_seconds_sum", gen_ai_operation_name="chat.completions", **model
    ) == (pytest.approx(sum(r.latency_ms or 0 for r in served) / 1000))
    assert m.value("gen_ai_server_time_to_first_token_seconds_count", **model) == 1
    for kind, field in (("input", "input_tokens"), ("output", "output_tokens")):
        counted = [getattr(r, field) for r in served if r.usage_source is not None and getattr(r, field)]
        assert m.value("gen_ai_client_token_usage_sum", **model, gen_ai_token_type=kind) == sum(counted)
        assert m.value("gen_ai_client_token_usage_count", **model, gen_ai_token_type=kind) == len(counted)
        assert m.value("keel_tokens_total", model="gpt-test", type=kind) == sum(counted)

    team = {"route": "gpt-test", "team": ""}
    spent = sum(r.cost_nanos or 0 for r in paid)
    assert spent == sum(r.input_tokens * INPUT_NANOS + r.output_tokens * OUTPUT_NANOS for r in paid)  # type: ignore[operator]
    assert m.value("keel_cost_usd_total", deployment=upstream.name, **team) == pytest.approx(spent / 1e9)
    assert m.value("keel_cache_lookups_total", route="gpt-test", result="miss") == 2
    assert m.value("keel_cache_lookups_total", route="gpt-test", result="hit") == 1
    assert cached.cost_saved_nanos
    assert m.value("keel_cache_saved_usd_total", **team) == pytest.approx(cached.cost_saved_nanos / 1e9)
    # A hit has no deployment, and costs nothing: it makes no cost series of its own.
    assert m.get("keel_cost_usd_total", deployment="", **team) is None

    assert m.value("keel_upstream_attempts_total", deployment=upstream.name, outcome="ok") == 2
    assert m.value("keel_breaker_open", deployment=upstream.name) == 0
    assert m.value("keel_breaker_state", deployment=upstream.name, state="closed") == 1
    assert m.value("keel_breaker_state", deployment=upstream.name, state="open") == 0
    assert m.value("keel_upstream_in_flight", deployment=upstream.name) == 0
    assert m.value("keel_request_log_written") == 4
    assert m.value("keel_request_log_queue_depth") == 0


def test_cost_is_labelled_by_team_and_never_by_key_or_end_user(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory(
        {"gpt-test": [upstream]}, spend=PRICED, access=AccessSettings(enabled=True, refresh_interval=60)
    )
    admin = gw.admin()
    team_id = admin.team("search")
    key_id, secret = admin.new_key("app", team_id=team_id)
    for user in ("alice@example.com", "bob"):
        assert _chat(gw, "hello there", key=secret, user=user).status_code == 200
    m = Scrape(gw)
    records = gw.records()
    assert {r.key_id for r in records} == {key_id}
    expected = sum(r.cost_nanos or 0 for r in records) / 1e9
    assert expected > 0
    assert m.value("keel_cost_usd_total", route="gpt-test", deployment=upstream.name, team=team_id) == (
        pytest.approx(expected)
    )
    assert not {key_id, secret, "alice@example.com", "bob"} & m.label_values()
    assert key_id not in m.text and "alice@example.com" not in m.text


def test_guard_decisions_are_counted_by_policy_stage_and_decision(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory(
        {"gpt-test": [upstream]},
        guards=GuardSettings(
            policies={"strict": PolicySettings(action="block", input=["pii"], output=["secrets"])}
        ),
        route_options={"gpt-test": {"guard_policy": "strict"}},
    )
    assert _chat(gw, "hello").status_code == 200  # input allow, output allow
    assert _chat(gw, "mail jane.doe@example.com").status_code == 400  # input block
    upstream.set_default(Fault(reply=f"the key is {API_KEY}"))
    blocked = _chat(gw, "what is the key?")  # input allow, output block
    assert blocked.json()["choices"][0]["finish_reason"] == "content_filter"
    with httpx.stream(
        "POST",
        f"{gw.base_url}/chat/completions",
        json={"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "key?"}]},
    ) as stream:
        assert "content_filter" in stream.read().decode()  # input allow, output block (streamed)
    m = Scrape(gw)

    def decisions(stage: str, decision: str) -> float | None:
        return m.get("keel_guard_decisions_total", policy="strict", stage=stage, decision=decision)

    assert (decisions("input", "allow"), decisions("input", "block")) == (3, 1)
    assert (decisions("output", "allow"), decisions("output", "block")) == (1, 2)
    assert m.value("keel_guard_verdicts_total", policy="strict", scanner="pii", verdict="block") == 1


def test_an_open_breaker_shows_at_scrape_time_and_its_failures_by_kind(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    upstream.set_default(Fault(status=500))
    gw = gateway_factory(
        {"gpt-test": [upstream]},
        breaker=BreakerPolicy(failure_threshold=2, cooldown=30),
        retry=RetryPolicy(max_attempts=2, backoff_base=0.001, backoff_max=0.001),
    )
    assert _chat(gw, "hi").status_code >= 500
    m = Scrape(gw)
    assert m.value("keel_upstream_attempts_total", deployment=upstream.name, outcome="server_error") == 2
    assert m.value("keel_breaker_open", deployment=upstream.name) == 1
    assert m.value("keel_breaker_state", deployment=upstream.name, state="open") == 1
    assert m.value("keel_breaker_state", deployment=upstream.name, state="closed") == 0


def test_budgets_are_read_at_scrape_time_from_the_watched_source(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory(
        {"gpt-test": [upstream]}, spend=PRICED, access=AccessSettings(enabled=True, refresh_interval=60)
    )
    admin = gw.admin()
    team_id = admin.team("search")
    key_id, secret = admin.new_key("app", team_id=team_id)
    budget = admin.post(
        "/budgets", {"scope": "team", "scope_id": team_id, "period": "month", "limit_usd": "1", "hard": True}
    )
    engine, ledger = gw.app.engine, gw.app.ledger

    # The source keel.server gives the metrics: every budget's current window.
    async def budgets() -> list[BudgetReading]:
        found = await asyncio.to_thread(list_budgets, engine)
        readings = []
        for b in found:
            status = await ledger.budget_status(b)
            readings.append(
                BudgetReading(
                    b.id, b.scope, b.period, b.team_id, b.limit_nanos, status.spent + status.reserved
                )
            )
        return readings

    gw.app.gateway.metrics.watch_budgets(budgets)
    assert _chat(gw, "hello there", key=secret).status_code == 200
    [record] = gw.records()
    assert record.cost_nanos
    labels = {"budget": budget["id"], "scope": "team", "period": "month", "team": team_id}
    # The ledger writes the settled cost in the background: until then the budget holds
    # the call's reservation (its most possible cost).
    m = Scrape(gw)
    for _ in range(200):
        if m.value("keel_budget_used_ratio", **labels) == pytest.approx(record.cost_nanos / 1e9):
            break
        time.sleep(0.02)
        m = Scrape(gw)
    assert m.value("keel_budget_limit_usd", **labels) == 1
    assert m.value("keel_budget_remaining_usd", **labels) == pytest.approx(1 - record.cost_nanos / 1e9)
    assert m.value("keel_budget_used_ratio", **labels) == pytest.approx(record.cost_nanos / 1e9)
    assert key_id not in m.label_values()

    # A failing source leaves the last readings: a scrape never fails because of it.
    async def broken() -> list[BudgetReading]:
        raise RuntimeError("store unreachable")

    gw.app.gateway.metrics.watch_budgets(broken)
    assert Scrape(gw).value("keel_budget_limit_usd", **labels) == 1
