"""Reading and changing alert state and history in the store.

Every transition that notifies (to firing, to resolved) is claimed with a
compare-and-set: ``UPDATE alert_state ... WHERE rule = ? AND fingerprint = ? AND version
= <the version this process read>`` (or an ``INSERT`` of a series' first row, which the
primary key lets only one process do), in the same transaction as its ``alert_events``
row. Of several gateways evaluating the same rule against the same store, exactly one
commits each transition; the others see no row changed, roll back and send nothing. No
lock is held while rules are evaluated or channels called, so a slow webhook in one
process stalls nobody else, and no lease needs to expire after a crash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from keel.alerts._tables import alert_events, alert_state

State = Literal["ok", "pending", "firing"]


def fingerprint(labels: Mapping[str, str]) -> str:
    """The key of one series of a rule: the hash of its labels' canonical JSON."""
    return hashlib.sha256(json.dumps(dict(labels), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One firing or resolved transition (``alert_history``), or a firing that is still
    on (``active_alerts``: ``id`` is the event that fired it, ``at`` when it started)."""

    id: int
    rule: str
    kind: str
    state: Literal["firing", "resolved"]
    severity: str
    summary: str
    value: float | None
    threshold: float | None
    team_id: str | None
    at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    # {channel: {"ok": bool, "attempts": int, "error": str | None}}: what each channel did.
    notifications: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "kind": self.kind,
            "state": self.state,
            "severity": self.severity,
            "summary": self.summary,
            "value": self.value,
            "threshold": self.threshold,
            "team_id": self.team_id,
            "at": self.at.isoformat(),
            "labels": dict(self.labels),
            "notifications": dict(self.notifications),
        }


@dataclass(frozen=True, slots=True)
class SeriesState:
    """One row of ``alert_state``."""

    rule: str
    fingerprint: str
    kind: str
    labels: Mapping[str, str]
    state: State
    severity: str
    team_id: str | None
    value: float | None
    threshold: float | None
    summary: str
    pending_since: datetime | None
    started_at: datetime | None
    resolved_at: datetime | None
    evaluated_at: datetime
    event_id: int | None
    version: int

    @classmethod
    def from_row(cls, row: Any) -> SeriesState:
        return cls(**{name: row._mapping[name] for name in cls.__slots__})

    def as_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__}
        data["labels"] = dict(self.labels)
        for name in ("pending_since", "started_at", "resolved_at", "evaluated_at"):
            data[name] = data[name].isoformat() if data[name] is not None else None
        return data


def load_states(engine: Engine) -> dict[tuple[str, str], SeriesState]:
    return {(state.rule, state.fingerprint): state for state in alert_states(engine)}


def alert_states(engine: Engine, *, team_id: str | None = None) -> list[SeriesState]:
    """Every series the store has seen pending or firing, by rule (``keel alerts list``)."""
    query = select(alert_state).order_by(alert_state.c.rule, alert_state.c.fingerprint)
    if team_id is not None:
        query = query.where(alert_state.c.team_id == team_id)
    with engine.connect() as connection:
        return [SeriesState.from_row(row) for row in connection.execute(query)]


@dataclass(frozen=True, slots=True)
class Change:
    """What one evaluation wants for one series: its new state and row values, and
    ``event`` when the change is one people are told about."""

    rule: str
    kind: str
    fingerprint: str
    labels: Mapping[str, str]
    state: State
    severity: str
    team_id: str | None
    value: float | None
    threshold: float | None
    summary: str
    pending_since: datetime | None
    started_at: datetime | None
    resolved_at: datetime | None
    event: Literal["firing", "resolved"] | None
    # The version read (None: no row yet).
    expected: int | None
    # Only a new value for a series whose state stays: the version stays too, so that the
    # refresh never makes another process's claim of a real transition fail.
    refresh: bool = False


def apply_change(engine: Engine, change: Change, now: datetime) -> AlertEvent | None:
    """Record ``change`` if the series is still at the version read. Returns the event
    when this process recorded a notifying transition, None otherwise (nothing to tell,
    or another process got there first)."""
    values: dict[str, Any] = {
        "kind": change.kind,
        "labels": dict(change.labels),
        "state": change.state,
        "severity": change.severity,
        "team_id": change.team_id,
        "value": change.value,
        "threshold": change.threshold,
        "summary": change.summary,
        "pending_since": change.pending_since,
        "started_at": change.started_at,
        "resolved_at": change.resolved_at,
        "evaluated_at": now,
    }
    try:
        with engine.begin() as connection:
            if not _claim(connection, change, values):
                return None
            if change.event is None:
                return None
            return _record_event(connection, change, now)
    except IntegrityError:  # another process inserted the series' first row
        return None


def _claim(connection: Connection, change: Change, values: dict[str, Any]) -> bool:
    if change.expected is None:
        connection.execute(
            insert(alert_state).values(rule=change.rule, fingerprint=change.fingerprint, version=1, **values)
        )
        return True
    version = change.expected if change.refresh else change.expected + 1
    result = connection.execute(
        update(alert_state)
        .where(
            alert_state.c.rule == change.rule,
            alert_state.c.fingerprint == change.fingerprint,
            alert_state.c.version == change.expected,
        )
        .values(version=version, **values)
    )
    return result.rowcount == 1


def _record_event(connection: Connection, change: Change, now: datetime) -> AlertEvent:
    inserted = connection.execute(
        insert(alert_events).values(
            at=now,
            rule=change.rule,
            kind=change.kind,
            fingerprint=change.fingerprint,
            labels=dict(change.labels),
            state=change.event,
            severity=change.severity,
            summary=change.summary,
            value=change.value,
            threshold=change.threshold,
            team_id=change.team_id,
            started_at=change.started_at,
            resolved_at=change.resolved_at,
            notifications={},
        )
    ).inserted_primary_key
    assert inserted is not None
    event_id = int(inserted[0])
    if change.event == "firing":
        connection.execute(
            update(alert_state)
            .where(alert_state.c.rule == change.rule, alert_state.c.fingerprint == change.fingerprint)
            .values(event_id=event_id)
        )
    assert change.event is not None
    return AlertEvent(
        id=int(event_id),
        rule=change.rule,
        kind=change.kind,
        state=change.event,
        severity=change.severity,
        summary=change.summary,
        value=change.value,
        threshold=change.threshold,
        team_id=change.team_id,
        at=now,
        labels=dict(change.labels),
    )


def record_notifications(engine: Engine, event_id: int, outcomes: Mapping[str, Any]) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(alert_events).where(alert_events.c.id == event_id).values(notifications=dict(outcomes))
        )


def _event(row: Any) -> AlertEvent:
    return AlertEvent(
        id=int(row.id),
        rule=row.rule,
        kind=row.kind,
        state=row.state,
        severity=row.severity,
        summary=row.summary,
        value=row.value,
        threshold=row.threshold,
        team_id=row.team_id,
        at=row.at,
        labels=row.labels or {},
        notifications=row.notifications or {},
    )


def alert_history(engine: Engine, *, limit: int = 100, team_id: str | None = None) -> list[AlertEvent]:
    """The latest firing and resolved events, newest first; ``team_id``: only that team's."""
    query = select(alert_events).order_by(alert_events.c.id.desc()).limit(limit)
    if team_id is not None:
        query = query.where(alert_events.c.team_id == team_id)
    with engine.connect() as connection:
        return [_event(row) for row in connection.execute(query)]


def active_alerts(engine: Engine, *, team_id: str | None = None) -> list[AlertEvent]:
    """Every series firing now, most recently started first."""
    query = (
        select(alert_state, alert_events.c.notifications)
        .join(alert_events, alert_events.c.id == alert_state.c.event_id, isouter=True)
        .where(alert_state.c.state == "firing")
        .order_by(alert_state.c.started_at.desc(), alert_state.c.rule)
    )
    if team_id is not None:
        query = query.where(alert_state.c.team_id == team_id)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        AlertEvent(
            id=int(row.event_id or 0),
            rule=row.rule,
            kind=row.kind,
            state="firing",
            severity=row.severity,
            summary=row.summary,
            value=row.value,
            threshold=row.threshold,
            team_id=row.team_id,
            at=row.started_at or row.evaluated_at,
            labels=row.labels or {},
            notifications=row.notifications or {},
        )
        for row in rows
    ]
