"""The month's eval runs and their gate results, read from the ``eval_runs`` table.

Read through lightweight ``table()``/``column()`` declarations, not ``keel.evals``: the
evals package sits in the same layer as this one. A run belongs to a team when any of its
cells was answered by a request logged under that team (``eval_results.request_id``).
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import BigInteger, Boolean, Engine, String, Text, column, select, table

from keel.reports._month import Month
from keel.reports._types import EvalRun
from keel.store import UTCDateTime, request_log

_runs = table(
    "eval_runs",
    column("id", String),
    column("suite", String),
    column("created_at", UTCDateTime()),
    column("finished_at", UTCDateTime()),
    column("status", String),
    column("gate_passed", Boolean),
    column("cost_nanos", BigInteger),
    column("note", Text),
)
_results = table("eval_results", column("run_id", String), column("request_id", String))


def eval_runs(engine: Engine, month: Month) -> list[EvalRun]:
    """Runs started in the month, oldest first."""
    query = (
        select(_runs)
        .where(_runs.c.created_at >= month.start, _runs.c.created_at < month.end)
        .order_by(_runs.c.created_at, _runs.c.id)
    )
    with engine.connect() as connection:
        return [
            EvalRun(
                id=row.id,
                suite=row.suite,
                created_at=row.created_at,
                finished_at=row.finished_at,
                status=row.status,
                gate_passed=None if row.gate_passed is None else bool(row.gate_passed),
                cost_nanos=int(row.cost_nanos or 0),
                note=row.note,
            )
            for row in connection.execute(query)
        ]


def runs_by_team(engine: Engine, runs: list[EvalRun]) -> dict[str | None, list[EvalRun]]:
    """The runs per team whose keys answered some of their cells."""
    if not runs:
        return {}
    by_id = {run.id: run for run in runs}
    out: dict[str | None, list[EvalRun]] = defaultdict(list)
    ids = list(by_id)
    with engine.connect() as connection:
        for start in range(0, len(ids), 500):
            query = (
                select(_results.c.run_id, request_log.c.team_id)
                .distinct()
                .select_from(_results.join(request_log, request_log.c.id == _results.c.request_id))
                .where(_results.c.run_id.in_(ids[start : start + 500]))
            )
            for row in connection.execute(query):
                out[row.team_id].append(by_id[row.run_id])
    for team_runs in out.values():
        team_runs.sort(key=lambda r: (r.created_at, r.id))
    return dict(out)
