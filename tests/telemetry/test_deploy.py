"""The Grafana dashboard and the Prometheus alert rules in ``deploy/``: well-formed, and
every metric their PromQL names is one a live gateway's ``/metrics`` exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import FakeDeployment
from tests.gateway.conftest import GatewayFactory

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "keel-dashboard.json"
ALERTS = DEPLOY / "prometheus" / "keel-alerts.yml"

# Sample names a family of each type exposes (prometheus_client's text format).
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "gauge": ("",),
    "unknown": ("",),
}
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions,
    keywords, label names or Grafana variables."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, regexes)
    expr = re.sub(r"\{[^{}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\w+", "", expr)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        word = match.group()
        if expr[match.end() :].lstrip().startswith("(") or word in _KEYWORDS:
            continue  # a function or an operator
        names.add(word)
    return names


def test_the_promql_parser_of_this_test_finds_metric_names() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, model) (rate(a_seconds_bucket{x=~"b|c",y!="d"}[5m]))) '
        "/ ignoring(z) group_left sum(b_total offset 1h) * 1e9 and on() c:rule"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c:rule"}
    assert metric_names("sum(rate(x_total[$__rate_interval])) * 3600") == {"x_total"}


@pytest.fixture
def exported(gateway_factory: GatewayFactory, upstream: FakeDeployment) -> set[str]:
    """Every sample name a live gateway's /metrics can have (families without samples
    yet included: their HELP and TYPE lines are there)."""
    gw = gateway_factory({"gpt-test": [upstream]})
    text = httpx.get(f"{gw.url}/metrics").text
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def _dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            queries.append(re.sub(r"label_values\((\w+),.*\)", r"\1", query["query"]))
    return queries


def test_the_dashboard_is_grafana_json_with_a_query_in_every_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {"datasource"}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    graphs = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(graphs) >= 10
    for panel in graphs:
        assert panel["title"]
        assert panel["type"] in {"timeseries", "stat", "bargauge", "state-timeline", "gauge", "table"}
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"] and target["expr"].strip()
            assert target["datasource"]["type"] == "prometheus"
            assert target["expr"].count("(") == target["expr"].count(")")
            assert target["expr"].count("{") == target["expr"].count("}")
    # Panels do not overlap.
    cells = set()
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, panel["title"]
        cells |= area


def test_the_dashboard_reads_only_exported_metrics_and_shows_each_area(exported: set[str]) -> None:
    queries = _dashboard_queries(json.loads(DASHBOARD.read_text()))
    used = set().union(*(metric_names(q) for q in queries))
    assert used <= exported, used - exported
    for area in (
        "keel_requests_total",
        "gen_ai_client_operation_duration_seconds_bucket",
        "gen_ai_server_time_to_first_token_seconds_bucket",
        "keel_tokens_total",
        "keel_cost_usd_total",
        "keel_cache_lookups_total",
        "keel_guard_decisions_total",
        "keel_breaker_open",
        "keel_request_log_queue_depth",
        "keel_budget_used_ratio",
    ):
        assert area in used, area


def test_the_alert_rules_are_well_formed_and_read_only_exported_metrics(exported: set[str]) -> None:
    rules = [r for group in yaml.safe_load(ALERTS.read_text())["groups"] for r in group["rules"]]
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    used: set[str] = set()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["expr"].count("(") == rule["expr"].count(")")
        used |= metric_names(rule["expr"])
    assert used <= exported, used - exported
    watched = {
        "keel_requests_total": "error rate",
        "gen_ai_client_operation_duration_seconds_bucket": "p95 latency",
        "keel_breaker_open": "breaker open",
        "keel_request_log_queue_depth": "log queue backing up",
        "keel_budget_used_ratio": "budget nearly used",
    }
    assert set(watched) <= used
