"""A canary's live metrics against production's, from the request log since the canary
started: error rate, p95 latency, mean feedback score and guard trigger rate, each with
a one-sided test of "the canary is worse" and the configured threshold.

- Requests are split by the deployment that answered (the request log's
  ``deployment``): the canary's name, or anything else on the route (production).
  Requests that never reached a deployment (refused by a key, a limit or an input guard)
  are not counted.
- Error: a 5xx answer. A canary failure that the gateway retried on production is not
  one (the client got an answer), so with retries on, a failing canary shows first as
  slower; turn retries down to see its raw error rate.
- Tests: two-proportion z-test for the rates, Mann–Whitney U for latencies and for
  feedback scores (thumbs up 1 / down 0, rating (r − 1) / 4).
- A threshold is crossed when the difference exceeds it *and* is significant at
  ``alpha``. The verdict is ``rollback`` when any threshold is crossed (the tests
  account for small samples, and a failing canary whose circuit breaker opened gets
  few requests), else ``collecting`` until the canary has had ``min_requests``
  requests, then ``healthy``.

Checking again and again while a canary runs raises the chance of a false alarm above
``alpha``; requiring the difference to exceed a threshold as well keeps that low.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from keel.core import NotFound
from keel.core._settings_release import ReleaseSettings
from keel.feedback import feedback as feedback_table
from keel.release._deployments import ModelDeployment, RouteRelease, route_release
from keel.store import request_log

TRIGGERED = frozenset({"flag", "redact", "block"})
# The newest requests read per canary (enough for any test; bounds the work).
MAX_REQUESTS = 50_000
# Feedback scores each side needs before they are compared.
MIN_SCORES = 5


@dataclass(frozen=True, slots=True)
class MetricCheck:
    name: str  # error_rate | p95_latency_ms | feedback_score | guard_rate
    canary: float | None
    production: float | None
    canary_n: int
    production_n: int
    p_value: float | None
    limit: str
    crossed: bool
    test: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "canary": self.canary,
            "production": self.production,
            "canary_n": self.canary_n,
            "production_n": self.production_n,
            "p_value": self.p_value,
            "limit": self.limit,
            "crossed": self.crossed,
            "test": self.test,
        }


@dataclass(frozen=True, slots=True)
class CanaryReport:
    route: str
    canary: ModelDeployment
    production: str  # the live deployment's name, or "configured"
    since: datetime
    canary_requests: int
    production_requests: int
    checks: tuple[MetricCheck, ...]
    verdict: str  # collecting | healthy | rollback
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def observed_share(self) -> float | None:
        total = self.canary_requests + self.production_requests
        return self.canary_requests / total if total else None

    def to_json(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "canary": self.canary.to_json(),
            "production": self.production,
            "since": self.since.isoformat(),
            "canary_requests": self.canary_requests,
            "production_requests": self.production_requests,
            "observed_share": self.observed_share,
            "checks": [c.to_json() for c in self.checks],
            "verdict": self.verdict,
            "reasons": list(self.reasons),
        }


@dataclass(slots=True)
class _Arm:
    requests: int = 0
    errors: int = 0
    guarded: int = 0
    latencies: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


def canary_report(
    engine: Engine, route: str, settings: ReleaseSettings, *, release: RouteRelease | None = None
) -> CanaryReport:
    """The canary of ``route`` against production (NotFound without a canary)."""
    release = release or route_release(engine, route)
    canary = release.canary
    if canary is None:
        raise NotFound(f"route {route!r} has no canary")
    since = canary.created_at
    arms = {True: _Arm(), False: _Arm()}
    rows_query = (
        select(
            request_log.c.deployment,
            request_log.c.status,
            request_log.c.latency_ms,
            request_log.c.guards,
        )
        .where(
            request_log.c.route == route,
            request_log.c.created_at >= since,
            request_log.c.deployment.is_not(None),
        )
        .order_by(request_log.c.created_at.desc())
        .limit(MAX_REQUESTS)
    )
    scores_query = (
        select(request_log.c.deployment, feedback_table.c.score_value)
        .join(feedback_table, feedback_table.c.request_id == request_log.c.id)
        .where(
            request_log.c.route == route,
            request_log.c.created_at >= since,
            request_log.c.deployment.is_not(None),
            feedback_table.c.score_value.is_not(None),
        )
        .limit(MAX_REQUESTS)
    )
    with engine.connect() as connection:
        for row in connection.execute(rows_query):
            arm = arms[row.deployment == canary.name]
            arm.requests += 1
            if row.status >= 500:
                arm.errors += 1
            elif row.latency_ms is not None and 200 <= row.status < 300:
                arm.latencies.append(float(row.latency_ms))
            if _guard_triggered(row.guards):
                arm.guarded += 1
        for scored in connection.execute(scores_query):
            arms[scored.deployment == canary.name].scores.append(float(scored.score_value))
    ours, theirs = arms[True], arms[False]
    checks = (
        _rate_check(
            "error_rate",
            ours.errors,
            ours.requests,
            theirs.errors,
            theirs.requests,
            settings.max_error_rate_increase,
            settings.alpha,
        ),
        _latency_check(ours.latencies, theirs.latencies, settings),
        _score_check(ours.scores, theirs.scores, settings),
        _rate_check(
            "guard_rate",
            ours.guarded,
            ours.requests,
            theirs.guarded,
            theirs.requests,
            settings.max_guard_rate_increase,
            settings.alpha,
        ),
    )
    reasons = tuple(
        f"{c.name}: canary {_fmt(c.canary)} vs production {_fmt(c.production)} "
        f"({c.limit}, p={_fmt(c.p_value)})"
        for c in checks
        if c.crossed
    )
    # Few requests cannot show a canary healthy, but can show it significantly worse
    # (a canary whose circuit breaker opened gets only probes).
    verdict = "rollback" if reasons else "healthy" if ours.requests >= settings.min_requests else "collecting"
    production = release.live.name if release.live is not None else "configured"
    return CanaryReport(
        route, canary, production, since, ours.requests, theirs.requests, checks, verdict, reasons
    )


def _guard_triggered(guards: Any) -> bool:
    if not isinstance(guards, dict):
        return False
    for stage in ("input", "output"):
        verdicts = guards.get(stage)
        if isinstance(verdicts, dict) and verdicts.get("decision") in TRIGGERED:
            return True
    return False


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """One-sided p-value of "proportion 1 is greater than proportion 2" (pooled z-test);
    None when either side is empty."""
    if n1 == 0 or n2 == 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    from scipy.stats import norm

    return float(norm.sf((x1 / n1 - x2 / n2) / se))


def _rate_check(
    name: str, x1: int, n1: int, x2: int, n2: int, max_increase: float, alpha: float
) -> MetricCheck:
    canary = x1 / n1 if n1 else None
    production = x2 / n2 if n2 else None
    p_value = two_proportion_p(x1, n1, x2, n2)
    crossed = (
        canary is not None
        and production is not None
        and p_value is not None
        and canary - production > max_increase
        and p_value < alpha
    )
    limit = f"at most +{max_increase:g} over production"
    return MetricCheck(name, canary, production, n1, n2, p_value, limit, crossed, "two-proportion z-test")


def _mann_whitney(a: Sequence[float], b: Sequence[float], alternative: str) -> float | None:
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(a, b, alternative=alternative).pvalue)


def _p95(values: Sequence[float]) -> float | None:
    if not values:
        return None
    import numpy as np

    return float(np.percentile(values, 95))


def _latency_check(ours: list[float], theirs: list[float], settings: ReleaseSettings) -> MetricCheck:
    canary, production = _p95(ours), _p95(theirs)
    p_value = _mann_whitney(ours, theirs, "greater")
    crossed = False
    if canary is not None and production is not None and p_value is not None:
        ratio = canary / production if production > 0 else (math.inf if canary > 0 else 1.0)
        crossed = ratio > settings.max_latency_ratio and p_value < settings.alpha
    limit = f"p95 at most {settings.max_latency_ratio:g}x production's"
    return MetricCheck(
        "p95_latency_ms",
        canary,
        production,
        len(ours),
        len(theirs),
        p_value,
        limit,
        crossed,
        "Mann-Whitney U",
    )


def _score_check(ours: list[float], theirs: list[float], settings: ReleaseSettings) -> MetricCheck:
    canary = sum(ours) / len(ours) if ours else None
    production = sum(theirs) / len(theirs) if theirs else None
    p_value = _mann_whitney(ours, theirs, "less") if min(len(ours), len(theirs)) >= MIN_SCORES else None
    crossed = (
        canary is not None
        and production is not None
        and p_value is not None
        and production - canary > settings.max_feedback_drop
        and p_value < settings.alpha
    )
    limit = f"at most {settings.max_feedback_drop:g} below production"
    return MetricCheck(
        "feedback_score",
        canary,
        production,
        len(ours),
        len(theirs),
        p_value,
        limit,
        crossed,
        "Mann-Whitney U",
    )


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}"
