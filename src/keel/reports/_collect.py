"""Gathering a month's cost and governance report from the store.

Spend comes from ``keel.spend.usage_report`` (GROUP BY in the database): three queries
for every team at once (by model, by day and model, by key), not three per team.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime

from sqlalchemy import Engine, func, select

from keel.access import api_keys, teams
from keel.reports._budget_lines import budget_line
from keel.reports._eval_gates import eval_runs, runs_by_team
from keel.reports._guard_incidents import guard_incidents
from keel.reports._month import Month
from keel.reports._types import BudgetLine, CostReport, GuardIncidents, KeySpend, ModelSpend, TeamReport
from keel.spend import Budget, UsageRow, list_budgets, usage_report
from keel.store import request_log, status_condition

TOP_KEYS = 10
NO_TEAM = "(no team)"


def build_cost_report(
    engine: Engine, month: Month, *, team_id: str | None = None, now: datetime | None = None
) -> CostReport:
    """The report of ``month``: every team (with a section for requests of no team when
    there are any), or only ``team_id``. An organisation-wide report also has the
    budgets that belong to no team and every eval run of the month."""
    only = team_id is not None
    since, until = month.start, month.end
    by_model = usage_report(engine, group_by=["team", "model"], since=since, until=until, team_id=team_id)
    by_day = usage_report(
        engine, group_by=["team", "day", "model"], since=since, until=until, team_id=team_id
    )
    by_key = usage_report(engine, group_by=["team", "key"], since=since, until=until, team_id=team_id)
    errors = _errors(engine, month, team_id)
    incidents = guard_incidents(engine, month, team_id=team_id, only_team=only)
    runs = eval_runs(engine, month)
    team_runs = runs_by_team(engine, runs)
    names = _team_names(engine)
    budgets = list_budgets(engine, team_id=team_id) if only else list_budgets(engine)

    if only:
        ids: list[str | None] = [team_id]
    else:
        seen = {row.group["team"] for row in by_model} | set(incidents) | set(errors)
        seen |= {b.team_id for b in budgets if b.team_id is not None}
        named = sorted((tid for tid in names), key=lambda tid: names[tid].lower())
        ids = [*named, *sorted(t for t in seen if t is not None and t not in names)]
        if None in seen:
            ids.append(None)

    key_ids = {row.group["key"] or "" for row in by_key} | {b.scope_id for b in budgets if b.scope == "key"}
    key_names = _key_names(engine, key_ids)

    def line(budget: Budget) -> BudgetLine:
        names_of = names if budget.scope == "team" else key_names if budget.scope == "key" else {}
        return budget_line(engine, budget, month, scope_name=names_of.get(budget.scope_id, ""))

    days = month.days
    reports = []
    for tid in ids:
        model_rows = [r for r in by_model if r.group["team"] == tid]
        key_rows = [r for r in by_key if r.group["team"] == tid][:TOP_KEYS]
        reports.append(
            TeamReport(
                team_id=tid,
                name=NO_TEAM if tid is None else names.get(tid, tid),
                requests=sum(r.requests for r in model_rows),
                errors=errors.get(tid, 0),
                input_tokens=sum(r.input_tokens for r in model_rows),
                output_tokens=sum(r.output_tokens for r in model_rows),
                cost_nanos=sum(r.cost_nanos for r in model_rows),
                saved_nanos=sum(r.saved_nanos for r in model_rows),
                cache_hits=sum(r.cache_hits for r in model_rows),
                unpriced_requests=sum(r.unpriced_requests for r in model_rows),
                budgets=tuple(line(b) for b in budgets if tid is not None and b.team_id == tid),
                models=tuple(_model_spend(r) for r in model_rows),
                daily=_daily([r for r in by_day if r.group["team"] == tid], days),
                keys=tuple(
                    KeySpend(r.group["key"], key_names.get(r.group["key"] or ""), r.requests, r.cost_nanos)
                    for r in key_rows
                ),
                guards=incidents.get(tid, GuardIncidents()),
                evals=tuple(team_runs.get(tid, ())) if tid is not None else (),
            )
        )
    return CostReport(
        month=month,
        generated_at=now or datetime.now(UTC),
        teams=tuple(reports),
        team_id=team_id,
        org_budgets=() if only else tuple(line(b) for b in budgets if b.team_id is None),
        evals=() if only else tuple(runs),
    )


def _model_spend(row: UsageRow) -> ModelSpend:
    return ModelSpend(
        model=row.group["model"] or "?",
        requests=row.requests,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost_nanos=row.cost_nanos,
    )


def _daily(rows: list[UsageRow], days: list[date]) -> dict[str, tuple[int, ...]]:
    index = {day.isoformat(): i for i, day in enumerate(days)}
    out: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    for row in rows:
        day = str(row.group["day"] or "")[:10]
        if day in index:
            out[row.group["model"] or "?"][index[day]] += row.cost_nanos
    return {model: tuple(values) for model, values in out.items()}


def _errors(engine: Engine, month: Month, team_id: str | None) -> dict[str | None, int]:
    query = (
        select(request_log.c.team_id, func.count())
        .where(request_log.c.created_at >= month.start, request_log.c.created_at < month.end)
        .where(status_condition("error"))
        .group_by(request_log.c.team_id)
    )
    if team_id is not None:
        query = query.where(request_log.c.team_id == team_id)
    with engine.connect() as connection:
        return {row[0]: int(row[1]) for row in connection.execute(query)}


def _team_names(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        return {row.id: row.name for row in connection.execute(select(teams.c.id, teams.c.name))}


def _key_names(engine: Engine, key_ids: set[str]) -> dict[str, str]:
    wanted = sorted(k for k in key_ids if k)
    out: dict[str, str] = {}
    with engine.connect() as connection:
        for start in range(0, len(wanted), 500):
            query = select(api_keys.c.id, api_keys.c.name).where(
                api_keys.c.id.in_(wanted[start : start + 500])
            )
            out.update({row.id: row.name for row in connection.execute(query)})
    return out
