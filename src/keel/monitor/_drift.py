"""Drift results: testing two windows signal by signal, storing the time series, and
reading it back (the latest per signal, a signal's history)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, insert, select

from keel.core._settings_monitor import MonitorSettings, SignalMonitorSettings
from keel.monitor._detectors import build_detector, default_detector, run_detector
from keel.monitor._signals import SignalSpec
from keel.monitor._tables import monitor_drift
from keel.monitor._types import DataKind, NumericData
from keel.monitor._windows import GroupFilter, WindowData, signal_data


@dataclass(frozen=True)
class DriftResult:
    """One signal's test of one current window against its reference. ``score`` None:
    not tested (``details["skipped"]`` says why). ``route`` "" means every route."""

    at: datetime
    source: str
    route: str
    prompt: str
    model: str
    signal: str
    kind: DataKind
    detector: str
    window_start: datetime
    reference_start: datetime
    reference_end: datetime
    n_reference: int
    n_current: int
    score: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool
    reference_mean: float | None = None
    current_mean: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("at", "window_start", "reference_start", "reference_end"):
            out[key] = out[key].isoformat()
        out["details"] = dict(self.details)
        return out


@dataclass(frozen=True)
class WindowRanges:
    reference_start: datetime
    reference_end: datetime
    current_start: datetime
    current_end: datetime


def evaluate(
    data: WindowData,
    specs: Sequence[SignalSpec],
    settings: MonitorSettings,
    *,
    at: datetime,
    ranges: WindowRanges,
    where: GroupFilter,
    source: str,
) -> list[DriftResult]:
    """Every signal of ``specs`` tested on ``data``; a signal with too few observations
    on either side is reported as skipped, not as drift."""
    results: list[DriftResult] = []
    for spec in specs:
        own = settings.signals.get(spec.name, SignalMonitorSettings())
        reference = signal_data(spec, data.reference.get(spec.name), max_embeddings=settings.max_embeddings)
        current = signal_data(
            spec, data.current.get(spec.name), max_embeddings=settings.max_embeddings, seed=1
        )
        n_ref, n_cur = reference.n, current.n
        name = own.detector or spec.detector or default_detector(spec.kind, n_ref, n_cur)
        means: tuple[float | None, float | None] = (None, None)
        if isinstance(reference, NumericData) and isinstance(current, NumericData):
            means = (reference.mean(), current.mean())
        base: dict[str, Any] = {
            "at": at,
            "source": source,
            "route": where.route or "",
            "prompt": where.prompt or "",
            "model": where.model or "",
            "signal": spec.name,
            "kind": spec.kind,
            "detector": name,
            "window_start": ranges.current_start,
            "reference_start": ranges.reference_start,
            "reference_end": ranges.reference_end,
            "n_reference": n_ref,
            "n_current": n_cur,
            "reference_mean": means[0],
            "current_mean": means[1],
        }
        minimum = own.min_samples or settings.min_samples
        if min(n_ref, n_cur) < minimum:
            skipped = f"{min(n_ref, n_cur)} observations on one side (min_samples {minimum})"
            results.append(DriftResult(**base, score=None, p_value=None, threshold=None, drifted=False,
                                       details={"skipped": skipped}))  # fmt: skip
            continue
        options = {**spec.settings.get(name, {}), **(own.options if own.detector else {})}
        found = build_detector(name, options, location=f"monitor.signals.{spec.name}")
        try:
            outcome = run_detector(found, reference, current)
        except ValueError as exc:
            results.append(DriftResult(**base, score=None, p_value=None, threshold=None, drifted=False,
                                       details={"skipped": str(exc)}))  # fmt: skip
            continue
        results.append(
            DriftResult(
                **base,
                score=outcome.score,
                p_value=outcome.p_value,
                threshold=outcome.threshold,
                drifted=outcome.drifted,
                details=dict(outcome.details),
            )
        )
    return results


def store_results(engine: Engine, results: Sequence[DriftResult]) -> None:
    rows = []
    for r in results:
        row = asdict(r)
        row["details"] = _jsonable(dict(r.details))
        rows.append(row)
    if rows:
        with engine.begin() as connection:
            connection.execute(insert(monitor_drift), rows)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    return value


def _from_row(row: Any) -> DriftResult:
    return DriftResult(
        at=row.at,
        source=row.source,
        route=row.route,
        prompt=row.prompt,
        model=row.model,
        signal=row.signal,
        kind=row.kind,
        detector=row.detector,
        window_start=row.window_start,
        reference_start=row.reference_start,
        reference_end=row.reference_end,
        n_reference=int(row.n_reference),
        n_current=int(row.n_current),
        score=row.score,
        p_value=row.p_value,
        threshold=row.threshold,
        drifted=bool(row.drifted),
        reference_mean=row.reference_mean,
        current_mean=row.current_mean,
        details=row.details or {},
    )


def latest_drift(engine: Engine, *, route: str | None = None, source: str | None = None) -> list[DriftResult]:
    """The most recent result of every (source, route, prompt, model, signal): what the
    ``drift`` alert signal watches."""
    key = [monitor_drift.c.source, monitor_drift.c.route, monitor_drift.c.prompt, monitor_drift.c.model,
           monitor_drift.c.signal]  # fmt: skip
    newest = select(*key, func.max(monitor_drift.c.at).label("at")).group_by(*key)
    if route is not None:
        newest = newest.where(monitor_drift.c.route == route)
    if source is not None:
        newest = newest.where(monitor_drift.c.source == source)
    latest = newest.subquery()
    query = (
        select(monitor_drift)
        .join(
            latest,
            and_(*(column == latest.c[column.name] for column in key), monitor_drift.c.at == latest.c.at),
        )
        .order_by(monitor_drift.c.route, monitor_drift.c.signal, monitor_drift.c.id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    # Two results at the same instant (a rerun): the later row wins.
    found: dict[tuple[str, ...], DriftResult] = {}
    for row in rows:
        found[(row.source, row.route, row.prompt, row.model, row.signal)] = _from_row(row)
    return list(found.values())


def drift_history(
    engine: Engine,
    *,
    signal: str,
    route: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    source: str | None = None,
    limit: int = 1000,
) -> list[DriftResult]:
    """One signal's results over time (oldest first): the console's drift plot."""
    query = select(monitor_drift).where(monitor_drift.c.signal == signal)
    if route is not None:
        query = query.where(monitor_drift.c.route == route)
    if source is not None:
        query = query.where(monitor_drift.c.source == source)
    if since is not None:
        query = query.where(monitor_drift.c.at >= since)
    if until is not None:
        query = query.where(monitor_drift.c.at < until)
    query = query.order_by(monitor_drift.c.at.desc(), monitor_drift.c.id.desc()).limit(limit)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [_from_row(row) for row in reversed(rows)]
