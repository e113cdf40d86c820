"""Signals read from other stores than the request log: ``budget_used`` (keel.spend's
budget status) and ``eval_gate_failed`` (the eval harness's runs, read as plain SQL:
alerts sits beside keel.evals and does not import it)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Boolean, String, and_, column, func, select, table

from keel.alerts._signal import Observation, Signal, SignalContext, alert_signal
from keel.alerts._signals_log import resolve_team
from keel.spend import Scope, budget_status, format_usd, list_budgets
from keel.store import UTCDateTime


class BudgetFilters(BaseModel):
    """Which budgets a rule watches (every budget when empty). ``team``: a team's name or
    id (its own budgets and its keys'); ``scope_id`` with ``scope``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    budget: str | None = None
    scope: Scope | None = None
    scope_id: str | None = None
    team: str | None = None


class BudgetUsed:
    """Percent of each budget's limit spent or reserved in its current period."""

    # Without a rule threshold, each budget's own alert_at_fraction (or its limit) is it.
    needs_threshold = False

    def __init__(self, filters: BudgetFilters) -> None:
        self.filters = filters

    def observe(self, context: SignalContext) -> Sequence[Observation]:
        f, engine = self.filters, context.engine
        team_id = None
        if f.team is not None:
            with engine.connect() as connection:
                team_id = resolve_team(connection, f.team)
        budgets = list_budgets(engine, team_id=team_id, scope=f.scope, scope_id=f.scope_id)
        out = []
        for budget in budgets:
            if f.budget is not None and budget.id != f.budget:
                continue
            status = budget_status(engine, budget, context.now)
            used = status.spent + status.reserved
            share = 100.0 * used / budget.limit_nanos
            own = 100.0 * (budget.alert_at_fraction or 1.0)
            summary = (
                f"{budget.period} budget of {budget.scope} {budget.scope_id} at {share:.1f}% "
                f"(${format_usd(used)} of ${format_usd(budget.limit_nanos)})"
            )
            labels = {"budget": budget.id, "scope": budget.scope, "scope_id": budget.scope_id}
            out.append(Observation(labels, share, summary, budget.team_id, threshold=own))
        return out


_eval_runs = table(
    "eval_runs",
    column("id", String),
    column("suite", String),
    column("status", String),
    column("finished_at", UTCDateTime()),
    column("gate_passed", Boolean),
)


class EvalGateFailed:
    """1 while the newest complete run of a suite that has a gate failed it, else 0: a
    failing run fires at the first evaluation after it, and the alert resolves when a
    newer run of that suite passes."""

    needs_threshold = False

    def __init__(self, suite: str | None) -> None:
        self.suite = suite

    def observe(self, context: SignalContext) -> Sequence[Observation]:
        runs = _eval_runs.c
        gated = [runs.status == "complete", runs.gate_passed.is_not(None), runs.finished_at <= context.now]
        if self.suite is not None:
            gated.append(runs.suite == self.suite)
        newest = (
            select(runs.suite, func.max(runs.finished_at).label("finished_at"))
            .where(*gated)
            .group_by(runs.suite)
            .subquery()
        )
        query = (
            select(runs.suite, runs.id, runs.gate_passed)
            .join(newest, and_(newest.c.suite == runs.suite, newest.c.finished_at == runs.finished_at))
            .where(*gated)
            .order_by(runs.suite, runs.id)
        )
        with context.engine.connect() as connection:
            rows = connection.execute(query).all()
        latest = {row.suite: row for row in rows}  # two runs finished at once: either will do
        out = []
        for suite, row in sorted(latest.items()):
            failed = not row.gate_passed
            verdict = "failed" if failed else "passed"
            summary = f"eval suite {suite}: run {row.id} {verdict} its gate"
            out.append(Observation({"suite": suite}, 1.0 if failed else 0.0, summary, threshold=1.0))
        return out


_ALL_BUDGETS = BudgetFilters()


@alert_signal("budget_used")
def budget_used(filters: BudgetFilters = _ALL_BUDGETS) -> Signal:
    """Percent of a budget's limit used (spent plus reserved) in its current period."""
    return BudgetUsed(filters)


class EvalFilters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str | None = None


_ALL_SUITES = EvalFilters()


@alert_signal("eval_gate_failed")
def eval_gate_failed(filters: EvalFilters = _ALL_SUITES) -> Signal:
    """A suite's newest complete run failed its gate."""
    return EvalGateFailed(filters.suite)
