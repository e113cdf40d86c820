"""What a cost and governance report holds: plain frozen data, gathered from the store by
``_collect`` and rendered by ``_html``. Money is nano-USD, as in the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from keel.reports._month import Month


@dataclass(frozen=True, slots=True)
class ModelSpend:
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_nanos: int


@dataclass(frozen=True, slots=True)
class KeySpend:
    key_id: str | None
    name: str | None
    requests: int
    cost_nanos: int


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """A budget against the month's logged spend. For a month budget its one window is
    the month; for day and week budgets, every window that meets the month, of which
    ``peak`` is the one that spent most; for a total budget, everything up to the end of
    the month."""

    budget_id: str
    scope: str
    scope_id: str
    period: str
    limit_nanos: int
    hard: bool
    alert_at_fraction: float | None
    windows: int
    peak_label: str
    peak_spent_nanos: int
    # Windows that reached the limit, and that reached the alert fraction.
    over_windows: int
    alert_windows: int
    # What the scope is called (a team's or key's name); the id when it has none.
    scope_name: str = ""

    @property
    def fraction(self) -> float:
        return self.peak_spent_nanos / self.limit_nanos if self.limit_nanos else 0.0


@dataclass(frozen=True, slots=True)
class GuardExample:
    """One guard incident, for a reviewer to look up: ids, policy, decision, the scanners
    that objected and their reasons (entity types and rule names; never a found value)."""

    request_id: str
    at: datetime
    stage: str
    policy: str
    decision: str
    scanners: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GuardIncidents:
    """Requests on which a guard policy did anything but allow, counted once per request
    (at its most severe decision: block, then redact, then flag)."""

    screened: int = 0
    incidents: int = 0
    by_decision: Mapping[str, int] = field(default_factory=dict)
    by_policy: Mapping[str, int] = field(default_factory=dict)
    by_scanner: Mapping[str, int] = field(default_factory=dict)
    by_stage: Mapping[str, int] = field(default_factory=dict)
    examples: tuple[GuardExample, ...] = ()


@dataclass(frozen=True, slots=True)
class EvalRun:
    id: str
    suite: str
    created_at: datetime
    finished_at: datetime | None
    status: str
    gate_passed: bool | None
    cost_nanos: int
    note: str | None


@dataclass(frozen=True, slots=True)
class TeamReport:
    # None: requests made without a team (keys of no team, or access control off).
    team_id: str | None
    name: str
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nanos: int = 0
    saved_nanos: int = 0
    cache_hits: int = 0
    unpriced_requests: int = 0
    budgets: tuple[BudgetLine, ...] = ()
    # Largest cost first.
    models: tuple[ModelSpend, ...] = ()
    # Per model, its spend on each day of the month (nano-USD, in day order).
    daily: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    keys: tuple[KeySpend, ...] = ()
    guards: GuardIncidents = field(default_factory=GuardIncidents)
    # Runs with at least one request made under this team's keys.
    evals: tuple[EvalRun, ...] = ()

    @property
    def top_model(self) -> str | None:
        return self.models[0].model if self.models else None

    @property
    def month_budget(self) -> BudgetLine | None:
        """The team's own monthly budget, the headline "spend vs budget"."""
        return next(
            (b for b in self.budgets if b.scope == "team" and b.period == "month"),
            None,
        )

    @property
    def cache_hit_rate(self) -> float:
        return self.cache_hits / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class CostReport:
    month: Month
    generated_at: datetime
    teams: tuple[TeamReport, ...]
    # The one team asked for, or None for an organisation-wide report.
    team_id: str | None = None
    # Organisation-wide (no team): budgets on models and end users; every eval run.
    org_budgets: tuple[BudgetLine, ...] = ()
    evals: tuple[EvalRun, ...] = ()

    @property
    def cost_nanos(self) -> int:
        return sum(team.cost_nanos for team in self.teams)

    @property
    def complete(self) -> bool:
        """Whether the month had ended when the report was made."""
        return self.generated_at >= self.month.end

    def team(self, team_id: str | None) -> TeamReport:
        return next(t for t in self.teams if t.team_id == team_id)
