"""Metrics read when Prometheus scrapes: deployments' breakers and load, budgets.

These have a current value anyway, so reading it at scrape time costs nothing per
request and is never stale (a breaker moves from open to half-open by the clock alone,
with no request to report it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

BREAKER_STATES = ("closed", "half_open", "open")

# Yields (deployment name, breaker state, calls in flight now).
BreakerSource = Callable[[], Iterable[tuple[str, str, int]]]


@dataclass(frozen=True, slots=True)
class BudgetReading:
    """One budget's current window. Labels identify the budget, never whom it is on: a
    key's or an end user's budget is known by its budget id, not by the key or user."""

    budget_id: str
    scope: str  # key, team, end_user, model
    period: str
    team_id: str | None
    limit_nanos: int
    used_nanos: int  # spent plus reserved by calls in flight


BudgetSource = Callable[[], Awaitable[Iterable[BudgetReading]]]


class DeploymentCollector(Collector):
    def __init__(self) -> None:
        self.source: BreakerSource | None = None

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self._families()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        families = self._families()
        open_, state, in_flight = families
        for name, current, calls in self.source() if self.source is not None else ():
            open_.add_metric([name], 0.0 if current == "closed" else 1.0)
            for candidate in BREAKER_STATES:
                state.add_metric([name, candidate], 1.0 if candidate == current else 0.0)
            in_flight.add_metric([name], float(calls))
        return families

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "keel_breaker_open",
                "1 while a deployment's circuit breaker is open or half-open (no or one probe call).",
                labels=["deployment"],
            ),
            GaugeMetricFamily(
                "keel_breaker_state",
                "A deployment's circuit breaker state: 1 for the current one of closed, half_open, open.",
                labels=["deployment", "state"],
            ),
            GaugeMetricFamily(
                "keel_upstream_in_flight",
                "Upstream calls in flight now, by deployment.",
                labels=["deployment"],
            ),
        ]


class BudgetCollector(Collector):
    def __init__(self) -> None:
        self.readings: list[BudgetReading] = []

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        limit, remaining, used = self._families()
        for b in self.readings:
            labels = [b.budget_id, b.scope, b.period, b.team_id or ""]
            limit.add_metric(labels, b.limit_nanos / 1e9)
            remaining.add_metric(labels, (b.limit_nanos - b.used_nanos) / 1e9)
            used.add_metric(labels, b.used_nanos / b.limit_nanos if b.limit_nanos > 0 else 1.0)
        yield from (limit, remaining, used)

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        names = ["budget", "scope", "period", "team"]
        return [
            GaugeMetricFamily("keel_budget_limit_usd", "A budget's limit, in US dollars.", labels=names),
            GaugeMetricFamily(
                "keel_budget_remaining_usd",
                "What a budget has left in its current window, in US dollars (negative past a soft limit).",
                labels=names,
            ),
            GaugeMetricFamily(
                "keel_budget_used_ratio",
                "Share of a budget's limit used in its current window (spent plus reserved).",
                labels=names,
            ),
        ]
