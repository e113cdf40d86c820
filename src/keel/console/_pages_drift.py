"""Drift (issue #9): per route, every signal's latest drift test, its score (and the
signal's reference vs current mean) over time, and the requests that drifted most.

The results are ``keel.monitor``'s time series (``latest_drift``, ``drift_history``),
computed per route for every team at once; a team's key sees the routes its team sent
requests to in the range, and of the examples only its own requests.

"Drifted most" is said plainly per signal, because detectors rank differently: the
domain classifier scores each current request itself (``details.examples``); for other
signals the page measures the route's newest requests of the current window with the
signal's own function and orders them by distance from the reference mean (numbers), or
keeps those in the category whose share grew most (categories). MMD scores no single
request, so an embedding's examples are ranked by the length of the text it embeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, func, select

from keel.charts import Series, line_chart
from keel.console._pages import PageContext, PageResult
from keel.core import NotFound
from keel.monitor import DriftResult, LoggedRequest, SignalSpec, drift_history, get_signal, latest_drift
from keel.store import request_log

# keel.monitor's results over the request log (prediction logs are per model, not route).
SOURCE = "requests"
# How many of a route's newest current-window requests are measured for the examples.
EXAMPLE_SCAN = 200
EXAMPLES = 5
_SNIPPET = 160
# An embedding's stand-in when its test ranks no request: the length of what it embeds.
_LENGTH_OF = {"input_embedding": "input_chars", "output_embedding": "output_chars"}

c = request_log.c
_route = func.coalesce(c.route, c.requested_model)  # as keel.monitor groups requests


@dataclass(frozen=True)
class Example:
    request_id: str
    created_at: datetime
    value: str  # what the ranking measured on this request
    text: str  # the start of the question (or the answer, for output signals)


@dataclass(frozen=True)
class Examples:
    signal: str
    ranking: str  # what the order means, in words
    rows: list[Example]


@dataclass(frozen=True)
class SignalView:
    result: DriftResult
    score_chart: str
    mean_chart: str | None

    @property
    def skipped(self) -> str | None:
        reason = self.result.details.get("skipped")
        return str(reason) if reason else None


def drift_page(ctx: PageContext) -> PageResult:
    team_id = ctx.viewer.team_id
    latest = [r for r in latest_drift(ctx.engine, source=SOURCE) if not r.prompt and not r.model]
    with ctx.engine.connect() as connection:
        routes = visible_routes(connection, sorted({r.route for r in latest}), team_id, ctx)
    route = ctx.params.get("route") or None
    if route is None and routes:
        # First the route where most signals drifted: what someone opening the page wants.
        drifted = {r: sum(1 for x in latest if x.route == r and x.drifted) for r in routes}
        route = max(routes, key=lambda r: drifted[r])
    elif route not in routes:
        # Another team's route answers as one that does not exist.
        raise NotFound(f"No drift results for route {route!r}.", param="route")
    if route is None:
        return PageResult("drift.html", {"routes": [], "route": None, "signals": [], "examples": []})
    mine = sorted((r for r in latest if r.route == route), key=lambda r: (not r.drifted, r.signal))
    by_signal = {r.signal: r for r in mine}
    views = [_view(ctx, route, result) for result in mine]
    with ctx.engine.connect() as connection:
        examples = [
            found
            for result in mine
            if result.drifted and (found := drifted_examples(connection, result, by_signal, team_id))
        ]
    return PageResult(
        "drift.html",
        {"routes": routes, "route": route, "signals": views, "examples": examples},
    )


def visible_routes(
    connection: Connection, routes: Sequence[str], team_id: str | None, ctx: PageContext
) -> list[str]:
    """Every route with results for an admin; for a team, those it sent requests to in the
    range (the results mix every team's traffic, so a route it never used is not its)."""
    if team_id is None:
        return list(routes)
    used = set(
        connection.execute(
            select(_route)
            .distinct()
            .where(c.team_id == team_id, c.created_at >= ctx.range.since, c.created_at < ctx.range.until)
        ).scalars()
    )
    return [route for route in routes if route in used]


def _view(ctx: PageContext, route: str, result: DriftResult) -> SignalView:
    history = [
        r
        for r in drift_history(
            ctx.engine,
            signal=result.signal,
            route=route,
            since=ctx.range.since,
            until=ctx.range.until,
            source=SOURCE,
        )
        if not r.prompt and not r.model
    ]
    labels = [ctx.range.label(r.at) for r in history]
    detectors = sorted({r.detector for r in history if r.score is not None})
    # The default detector changes with the sample size, and scores of two detectors are
    # not on one scale: one line each.
    series = [Series(d, [r.score if r.detector == d else None for r in history]) for d in detectors]
    thresholds = [r.threshold if r.details.get("compare") == "score" else None for r in history]
    if any(t is not None for t in thresholds):
        series.append(Series("threshold", thresholds, "#9aa3b2"))
    score_chart = line_chart(
        series, labels, title=f"{result.signal}: drift score", y_format=_short, width=560, height=200
    )
    mean_chart = None
    if result.kind == "numeric":
        mean_chart = line_chart(
            [
                Series("reference mean", [r.reference_mean for r in history], "#9aa3b2"),
                Series("current mean", [r.current_mean for r in history]),
            ],
            labels,
            title=f"{result.signal}: mean, reference vs current",
            y_format=_short,
            width=560,
            height=200,
        )
    return SignalView(result, score_chart, mean_chart)


def _short(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


# -- the examples that drifted most ---------------------------------------------------


def drifted_examples(
    connection: Connection,
    result: DriftResult,
    by_signal: Mapping[str, DriftResult],
    team_id: str | None,
) -> Examples | None:
    """The current window's requests that moved ``result``'s signal most, with what the
    ranking is; None for a signal measured on no single request (feedback scores)."""
    classified = result.details.get("examples")
    if isinstance(classified, list) and classified:
        return _classifier_examples(connection, result, classified, team_id)
    spec = get_signal(result.signal)
    if spec.source == "events":
        return None
    if spec.kind == "embedding":
        stand_in = _LENGTH_OF.get(result.signal, "input_chars")
        reference = by_signal.get(stand_in)
        if reference is None or reference.reference_mean is None:
            return Examples(result.signal, f"The test scores no single request, and no {stand_in} result "
                            "gives a reference to rank them by.", [])  # fmt: skip
        ranking = (
            f"The {result.detector} test scores no single request: ranked instead by {stand_in} (the "
            f"length of the text embedded), furthest from its reference mean "
            f"({reference.reference_mean:,.0f}) first, among the route's {EXAMPLE_SCAN} newest requests "
            "of the current window."
        )
        return _ranked(connection, result, get_signal(stand_in), reference.reference_mean, ranking, team_id)
    if spec.kind == "numeric":
        if result.reference_mean is None:
            return None
        ranking = (
            f"{result.signal} furthest from the reference mean ({result.reference_mean:,.4g}) first, among "
            f"the route's {EXAMPLE_SCAN} newest requests of the current window."
        )
        return _ranked(connection, result, spec, result.reference_mean, ranking, team_id)
    return _category_examples(connection, result, spec, team_id)


def _classifier_examples(
    connection: Connection, result: DriftResult, classified: list[Any], team_id: str | None
) -> Examples:
    scores = {str(e["id"]): float(e["score"]) for e in classified if isinstance(e, dict) and e.get("id")}
    rows = {row.id: row for row in connection.execute(_requests(team_id).where(c.id.in_(list(scores))))}
    out = [
        _example(rows[rid], result.signal, f"{score:.2f}")
        for rid, score in sorted(scores.items(), key=lambda kv: -kv[1])
        if rid in rows
    ]
    ranking = (
        "The domain classifier's probability that the request belongs to the current window rather "
        "than the reference, highest first (the requests least like the reference)."
    )
    return Examples(result.signal, ranking, out[:EXAMPLES])


def _ranked(
    connection: Connection,
    result: DriftResult,
    spec: SignalSpec,
    reference_mean: float,
    ranking: str,
    team_id: str | None,
) -> Examples:
    rows = _window_rows(connection, result, team_id)
    values = _measure(spec, rows)
    scored = [(abs(v - reference_mean), row, v) for row, v in zip(rows, values, strict=True) if _is_number(v)]
    scored.sort(key=lambda item: -item[0])
    out = [_example(row, result.signal, _short(float(v))) for _, row, v in scored[:EXAMPLES]]
    return Examples(result.signal, ranking, out)


def _category_examples(
    connection: Connection, result: DriftResult, spec: SignalSpec, team_id: str | None
) -> Examples | None:
    moved = [m for m in result.details.get("moved") or [] if isinstance(m, dict)]
    grown = [m for m in moved if float(m.get("current", 0)) > float(m.get("reference", 0))]
    if not grown:
        return None
    top = max(grown, key=lambda m: float(m["current"]) - float(m["reference"]))
    category = str(top["category"])
    rows = _window_rows(connection, result, team_id)
    values = _measure(spec, rows)
    out = [
        _example(row, result.signal, category) for row, v in zip(rows, values, strict=True) if v == category
    ]
    ranking = (
        f"Requests whose {result.signal} is '{category}', the category whose share grew most "
        f"({float(top['reference']):.1%} of the reference, {float(top['current']):.1%} now), newest first, "
        f"among the route's {EXAMPLE_SCAN} newest requests of the current window."
    )
    return Examples(result.signal, ranking, out[:EXAMPLES])


def _requests(team_id: str | None) -> Any:
    query = select(request_log)
    return query.where(c.team_id == team_id) if team_id is not None else query


def _window_rows(connection: Connection, result: DriftResult, team_id: str | None) -> list[Any]:
    query = _requests(team_id).where(and_(c.created_at >= result.window_start, c.created_at <= result.at))
    if result.route:
        query = query.where(_route == result.route)
    return list(connection.execute(query.order_by(c.created_at.desc()).limit(EXAMPLE_SCAN)))


def _measure(spec: SignalSpec, rows: list[Any]) -> list[Any]:
    """The signal's value on each row, with the signal's own function."""
    if not rows:
        return []
    if spec.source == "columns":
        columns = {name: [row._mapping[name] for row in rows] for name in rows[0]._mapping}
        return list(spec.compute(columns))
    return [spec.compute(_logged(row)) for row in rows]


def _logged(row: Any) -> LoggedRequest:
    return LoggedRequest(row.id, row.created_at, row.status, row.request_body, row.response_body)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.floating | np.integer) and bool(np.isfinite(value))


def _example(row: Any, signal: str, value: str) -> Example:
    logged = _logged(row)
    text = (logged.output_text if signal.startswith("output") else logged.input_text) or ""
    text = " ".join(text.split())
    return Example(
        row.id, row.created_at, value, text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"
    )
