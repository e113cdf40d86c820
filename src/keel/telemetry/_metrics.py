"""Prometheus metrics of the gateway.

Names follow the OpenTelemetry GenAI conventions where one exists
(``gen_ai_client_operation_duration_seconds``, ``gen_ai_client_token_usage``,
``gen_ai_server_time_to_first_token_seconds``) and are ``keel_*`` otherwise. Every label
has bounded cardinality: route, deployment, policy and scanner names come from
configuration, teams and budgets from what an administrator created; never a key, an
end user or anything else a request chooses (an unknown model is counted under
``model="unknown"``).

Per-request updates go to label children bound once per label combination
(``labels()`` hashes and locks on every call). What has a current value anyway (breaker
state, queue depth, budgets) is read when Prometheus scrapes, at no cost per request.

Each ``GatewayMetrics`` owns its ``CollectorRegistry`` so that several gateways (tests,
benchmarks) can live in one process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from keel.store import RequestRecord
from keel.telemetry._collectors import (
    BreakerSource,
    BudgetCollector,
    BudgetSource,
    DeploymentCollector,
)

log = logging.getLogger("keel.telemetry")

# Latency buckets from 5 ms to 2 min: LLM calls are slow and long-tailed.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 120)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)
# A scrape waits at most this long for the budget readings, then shows the last ones.
_BUDGET_READ_TIMEOUT_S = 2.0

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
        self.cost = Counter(
            "keel_cost_usd",
            "What calls cost at the price in force, in US dollars, by route, deployment and team "
            '(team="" without access control).',
            ("route", "deployment", "team"),
            registry=r,
        )
        self.cache_lookups = Counter(
            "keel_cache_lookups",
            "Response cache lookups, by route and result (hit, semantic_hit, miss).",
            ("route", "result"),
            registry=r,
        )
        self.cache_saved = Counter(
            "keel_cache_saved_usd",
            "What cache hits saved (the cost of the answer they reused), in US dollars.",
            ("route", "team"),
            registry=r,
        )
        self.upstream_attempts = Counter(
            "keel_upstream_attempts",
            "Upstream calls, by deployment and outcome.",
            ("deployment", "outcome"),
            registry=r,
        )
        # Labels come from configuration (policy names, scanner labels) and three verdicts.
        self.guard_verdicts = Counter(
            "keel_guard_verdicts",
            "Guardrail scanner verdicts (pass, flag, block), by policy and scanner.",
            ("policy", "scanner", "verdict"),
            registry=r,
        )
        self.guard_decisions = Counter(
            "keel_guard_decisions",
            "Guard policy decisions on requests (input) and answers (output): allow, flag, redact, block.",
            ("policy", "stage", "decision"),
            registry=r,
        )
        self.log_queue_depth = Gauge(
            "keel_request_log_queue_depth", "Records waiting for the request log writer.", registry=r
        )
        self.log_written = Gauge(
            "keel_request_log_written", "Records the request log writer has stored.", registry=r
        )
        self._deployments = DeploymentCollector()
        r.register(self._deployments)
        self._budgets = BudgetCollector()
        r.register(self._budgets)
        self._budget_source: BudgetSource | None = None
        self._spend_children: dict[tuple[str, str, str, str | None], _SpendChildren] = {}
        self._attempt_children: dict[tuple[str, str], Any] = {}

    # -- per request ----------------------------------------------------------------------

    def observe_spend(self, record: RequestRecord) -> None:
        """Cost, cache result and cache savings of one finished request (the caller
        skips requests with neither a cost nor a cache lookup)."""
        key = (record.route or "unknown", record.deployment or "", record.team_id or "", record.cache_status)
        children = self._spend_children.get(key)
        if children is None:
            children = self._spend_children[key] = _SpendChildren(self, *key)
        if record.cost_nanos:
            if children.cost is None:
                children.cost = self.cost.labels(*key[:3])
            children.cost.inc(record.cost_nanos / 1e9)
        if children.lookups is not None:
            children.lookups.inc()
        if record.cost_saved_nanos and children.saved is not None:
            children.saved.inc(record.cost_saved_nanos / 1e9)

    def attempt(self, deployment: str, outcome: str) -> Any:
        """The ``keel_upstream_attempts_total`` child of (deployment, outcome), bound once."""
        key = (deployment, outcome)
        child = self._attempt_children.get(key)
        if child is None:
            child = self._attempt_children[key] = self.upstream_attempts.labels(deployment, outcome)
        return child

    # -- read at scrape time --------------------------------------------------------------

    def watch_log_writer(self, depth: Callable[[], float], written: Callable[[], float]) -> None:
        """Read the writer's queue depth and count at scrape time (no per-request cost)."""
        self.log_queue_depth.set_function(depth)
        self.log_written.set_function(written)

    def watch_deployments(self, source: BreakerSource) -> None:
        """Read each deployment's breaker state and calls in flight at scrape time:
        ``source()`` yields (deployment name, breaker state, calls in flight)."""
        self._deployments.source = source

    def watch_budgets(self, source: BudgetSource) -> None:
        """Export budgets: ``await source()`` gives the current ``BudgetReading``s; it is
        awaited by each scrape (``refresh``), bounded by a timeout."""
        self._budget_source = source

    async def refresh(self) -> None:
        """Read what needs awaiting before a scrape (the budgets). A slow or failing
        source leaves the last readings in place: a scrape never fails because of it."""
        source = self._budget_source
        if source is None:
            return
        try:
            readings = await asyncio.wait_for(source(), _BUDGET_READ_TIMEOUT_S)
        except Exception as exc:
            log.warning("metrics: could not read budgets (%s: %s)", type(exc).__name__, exc)
            return
        self._budgets.readings = list(readings)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _SpendChildren:
    __slots__ = ("cost", "lookups", "saved")

    def __init__(
        self, m: GatewayMetrics, route: str, deployment: str, team: str, cache_status: str | None
    ) -> None:
        # Bound on the first cost: a cache hit has none and no deployment.
        self.cost: Any = None
        self.lookups = m.cache_lookups.labels(route, cache_status) if cache_status is not None else None
        self.saved = m.cache_saved.labels(route, team) if cache_status is not None else None
