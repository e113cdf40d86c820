"""What the console should show for the seeded records, computed here from the records
themselves (not through the console's SQL)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from keel.store import RequestRecord

# The whole seeded week (SEED_NOW - 7 days .. SEED_NOW), as the console's URL parameters.
WEEK = {"range": "custom", "from": "2026-11-13T12:00", "to": "2026-11-20T12:00"}
WEEK_QUERY = "range=custom&from=2026-11-13T12:00&to=2026-11-20T12:00"


@dataclass
class Aggregates:
    requests: int
    errors: int
    cost_nanos: int
    saved_nanos: int
    guard_triggers: int
    teams: set[str | None]


def failed(record: RequestRecord) -> bool:
    return record.status >= 400 or record.error_type is not None


def triggered(record: RequestRecord) -> bool:
    guards = record.guards or {}
    return any(
        isinstance(stage, dict) and stage.get("decision") in ("flag", "redact", "block")
        for stage in guards.values()
    )


def aggregates(records: Iterable[RequestRecord], team_id: str | None = None) -> Aggregates:
    chosen = [r for r in records if team_id is None or r.team_id == team_id]
    return Aggregates(
        requests=len(chosen),
        errors=sum(failed(r) for r in chosen),
        cost_nanos=sum(r.cost_nanos or 0 for r in chosen),
        saved_nanos=sum(r.cost_saved_nanos or 0 for r in chosen),
        guard_triggers=sum(triggered(r) for r in chosen),
        teams={r.team_id for r in chosen},
    )
