"""Guard incidents from the request log's ``guards`` column: every request on which a
policy decided anything but ``allow``, per team.

Only what the gateway logged is read, and the gateway logs verdicts without the values
found (spans are offsets, reasons name entity types and rules). The examples keep even
less: scanner names and reasons, never offsets into a body.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, String, cast, select

from keel.reports._month import Month
from keel.reports._types import GuardExample, GuardIncidents
from keel.store import request_log

SEVERITY = {"allow": 0, "flag": 1, "redact": 2, "block": 3}
EXAMPLES = 5


@dataclass
class _Tally:
    screened: int = 0
    by_decision: Counter[str] = field(default_factory=Counter)
    by_policy: Counter[str] = field(default_factory=Counter)
    by_scanner: Counter[str] = field(default_factory=Counter)
    by_stage: Counter[str] = field(default_factory=Counter)
    # (severity, at, example): the most severe first, then the newest.
    examples: list[tuple[int, datetime, GuardExample]] = field(default_factory=list)

    def freeze(self) -> GuardIncidents:
        chosen = sorted(self.examples, key=lambda e: (-e[0], -e[1].timestamp(), e[2].request_id))
        return GuardIncidents(
            screened=self.screened,
            incidents=sum(self.by_decision.values()),
            by_decision=dict(self.by_decision.most_common()),
            by_policy=dict(self.by_policy.most_common()),
            by_scanner=dict(self.by_scanner.most_common()),
            by_stage=dict(self.by_stage.most_common()),
            examples=tuple(e[2] for e in chosen[:EXAMPLES]),
        )


def guard_incidents(
    engine: Engine, month: Month, *, team_id: str | None = None, only_team: bool = False
) -> dict[str | None, GuardIncidents]:
    """Per team id (None: no team): the month's incidents. With ``only_team``, just
    ``team_id``'s requests are read."""
    guards = request_log.c.guards
    query = (
        select(request_log.c.id, request_log.c.created_at, request_log.c.team_id, guards)
        .where(request_log.c.created_at >= month.start, request_log.c.created_at < month.end)
        # PostgreSQL keeps a logged None as JSON null, SQLite as SQL NULL: skip both.
        .where(guards.is_not(None), cast(guards, String) != "null")
    )
    if only_team:
        query = query.where(request_log.c.team_id == team_id)
    tallies: dict[str | None, _Tally] = defaultdict(_Tally)
    with engine.connect() as connection:
        for row in connection.execution_options(yield_per=2000).execute(query):
            _count(tallies[row.team_id], row.id, row.created_at, row.guards)
    return {team: tally.freeze() for team, tally in tallies.items()}


def _count(tally: _Tally, request_id: str, at: datetime, raw: Any) -> None:
    verdicts = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(verdicts, Mapping):
        return
    stages = [(stage, v) for stage, v in verdicts.items() if isinstance(v, Mapping)]
    if not stages:
        return
    tally.screened += 1
    objected = [(stage, v) for stage, v in stages if SEVERITY.get(str(v.get("decision")), 0) > 0]
    if not objected:
        return
    worst_stage, worst = max(objected, key=lambda item: SEVERITY.get(str(item[1].get("decision")), 0))
    decision = str(worst.get("decision"))
    tally.by_decision[decision] += 1
    tally.by_policy.update({str(v.get("policy") or "?") for _, v in objected})
    tally.by_stage.update({stage for stage, _ in objected})
    scanners = sorted({name for _, v in objected for name in _objecting(v.get("results"))})
    tally.by_scanner.update(scanners)
    reasons = sorted(
        {
            f"{r.get('scanner')}: {r.get('reason')}" if r.get("reason") else str(r.get("scanner"))
            for _, v in objected
            for r in _results(v.get("results"))
        }
    )
    example = GuardExample(
        request_id=request_id,
        at=at,
        stage=worst_stage,
        policy=str(worst.get("policy") or "?"),
        decision=decision,
        scanners=tuple(scanners),
        reasons=tuple(reasons),
    )
    tally.examples.append((SEVERITY[decision], at, example))
    if len(tally.examples) > 4 * EXAMPLES:
        # Keep memory bounded on a month of incidents: only the best candidates survive.
        tally.examples.sort(key=lambda e: (-e[0], -e[1].timestamp()))
        del tally.examples[EXAMPLES:]


def _results(raw: Any) -> Iterable[Mapping[str, Any]]:
    if not isinstance(raw, list):
        return []
    return [r for r in raw if isinstance(r, Mapping) and r.get("verdict", "pass") != "pass"]


def _objecting(raw: Any) -> Iterable[str]:
    return [str(r.get("scanner")) for r in _results(raw) if r.get("scanner")]
