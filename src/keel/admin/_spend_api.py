"""Admin API routes: budgets, rate limits, prices, usage.

Who may do what: admins everything; a team admin sets and deletes budgets and rate limits
on its own team and its team's keys; members read their team's budgets, rate limits and
usage. Budgets on end users and models, and prices, are for admins. A budget or rate limit
the caller may not see answers 404, the same as one that does not exist. After a change
this process's spend ledger reloads at once (``app.state.spend``, when the gateway runs);
other processes at their next poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from keel.access import AccessAdmin, Actor, Principal
from keel.admin._auth import Caller, actor_of, require_admin, require_team_admin, require_team_reader
from keel.admin._common import ERRORS, RequestBody, require_owner_admin
from keel.core import NotFound, PermissionDenied, SpendSettings
from keel.spend import (
    Budget,
    BudgetStatus,
    Price,
    RateLimit,
    SpendLedger,
    budget_status,
    delete_budget,
    delete_rate_limit,
    format_usd,
    get_budget,
    get_rate_limit,
    list_budgets,
    list_rate_limits,
    load_price_table,
    parse_group_by,
    parse_limit_scope,
    parse_moment,
    parse_scope,
    parse_usd,
    set_budget,
    set_price,
    set_rate_limit,
    usage_csv,
    usage_report,
    usd_to_nanos,
)

router = APIRouter()

T = TypeVar("T")


class BudgetIn(RequestBody):
    scope: str = Field(description="key, team, end_user or model")
    scope_id: str = Field(description="The key id, team id, end-user id or model name")
    period: str = Field(description="day, week, month (UTC; weeks start on Monday) or total")
    limit_usd: Decimal = Field(description="The limit in USD (more than zero)")
    hard: bool = Field(True, description="Refuse requests that would exceed it (else allow and alert)")
    alert_at_fraction: float | None = Field(0.8, description="Alert when spend reaches this fraction")


class BudgetOut(BaseModel):
    object: Literal["budget"] = "budget"
    id: str
    scope: str
    scope_id: str
    period: str
    limit_usd: str
    limit_nanos: int
    hard: bool
    alert_at_fraction: float | None
    team_id: str | None
    created_at: datetime
    created_by: str
    # Only when one budget is read: its current window, from the spend ledger.
    window_start: datetime | None = None
    window_end: datetime | None = None
    spent_nanos: int | None = None
    reserved_nanos: int | None = None
    remaining_nanos: int | None = None
    spent_usd: str | None = None
    remaining_usd: str | None = None

    @classmethod
    def of(cls, budget: Budget, status: BudgetStatus | None = None) -> BudgetOut:
        out = cls(
            id=budget.id,
            scope=budget.scope,
            scope_id=budget.scope_id,
            period=budget.period,
            limit_usd=format_usd(budget.limit_nanos),
            limit_nanos=budget.limit_nanos,
            hard=budget.hard,
            alert_at_fraction=budget.alert_at_fraction,
            team_id=budget.team_id,
            created_at=budget.created_at,
            created_by=budget.created_by,
        )
        if status is not None:
            out.window_start = status.window_start
            out.window_end = status.window_end
            out.spent_nanos = status.spent
            out.reserved_nanos = status.reserved
            out.remaining_nanos = status.remaining
            out.spent_usd = format_usd(status.spent)
            out.remaining_usd = format_usd(max(0, status.remaining))
        return out


class BudgetList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BudgetOut]


class RateLimitIn(RequestBody):
    scope: str = Field(description="key or team (limits on models are set in keel.yaml)")
    scope_id: str = Field(description="The key id or team id")
    rpm: int | None = Field(None, description="Requests per minute (more than zero; omitted: no limit)")
    tpm: int | None = Field(None, description="Tokens per minute (more than zero; omitted: no limit)")


class RateLimitOut(BaseModel):
    object: Literal["rate_limit"] = "rate_limit"
    id: str
    scope: str
    scope_id: str
    rpm: int | None
    tpm: int | None
    team_id: str | None
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, limit: RateLimit) -> RateLimitOut:
        return cls.model_validate(limit, from_attributes=True)


class RateLimitList(BaseModel):
    object: Literal["list"] = "list"
    data: list[RateLimitOut]


class PriceIn(RequestBody):
    model: str = Field(min_length=1, max_length=255)
    token_type: str = Field(description="input, cached_input or output")
    usd_per_million: Decimal = Field(description="USD per 1M tokens (zero or more)")
    effective_from: datetime | None = Field(None, description="In force from (default: now; naive is UTC)")


class PriceOut(BaseModel):
    object: Literal["price"] = "price"
    model: str
    token_type: str
    usd_per_million: str
    effective_from: datetime
    source: str

    @classmethod
    def of(cls, price: Price) -> PriceOut:
        return cls(
            model=price.model,
            token_type=price.token_type,
            usd_per_million=format(price.usd_per_million.normalize(), "f"),
            effective_from=price.effective_from,
            source=price.source,
        )


class PriceList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PriceOut]


class UsageList(BaseModel):
    object: Literal["list"] = "list"
    group_by: list[str]
    since: datetime | None
    until: datetime | None
    data: list[dict[str, Any]]


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _ledger(request: Request) -> SpendLedger | None:
    ledger: SpendLedger | None = getattr(request.app.state, "spend", None)
    return ledger


async def _changed(request: Request, change: Callable[[], T]) -> T:
    """Run ``change`` (blocking store I/O) off the event loop; then this process's spend
    ledger reloads at once."""
    changed = await asyncio.to_thread(change)
    ledger = _ledger(request)
    if ledger is not None:
        await ledger.reload()
    return changed


def _owning_team(engine: Engine, who: Principal, scope: str, scope_id: str) -> str | None:
    """The team a new budget belongs to, once the caller may set it there; unknown teams
    and keys (or ones the caller may not see) are NotFound."""
    access = AccessAdmin(engine)
    actor = Actor.of_key(who)
    if scope == "team":
        access.get_team(actor, scope_id)
        require_team_admin(who, scope_id)
        return scope_id
    if scope == "key":
        key = access.get_key(actor, scope_id)
        require_owner_admin(who, key.team_id)
        return key.team_id
    require_admin(who)
    return None


def _require_visible(who: Principal, team_id: str | None, not_found: str) -> None:
    """Non-admins see their own team's objects only; others answer as unknown ones do."""
    if not who.is_admin and (team_id is None or team_id != who.team_id):
        raise NotFound(not_found)


def _visible_team(who: Principal, team_id: str | None) -> str | Literal[False] | None:
    """The team a list is limited to: ``team_id`` (None: every team) for admins, the
    caller's own for others, False when the caller may see no team's."""
    if who.is_admin:
        return team_id
    if team_id is not None:
        require_team_reader(who, team_id)
    return who.team_id if who.team_id is not None else False


def _visible_budget(engine: Engine, who: Principal, budget_id: str) -> Budget:
    budget = get_budget(engine, budget_id)
    _require_visible(who, budget.team_id, f"No budget {budget_id!r}.")
    return budget


@router.post("/budgets", response_model=BudgetOut, status_code=201, tags=["budgets"], responses=ERRORS)
async def create_budget(body: BudgetIn, request: Request, who: Caller) -> BudgetOut:
    """Set the budget of a scope and period (replacing the one there is)."""
    engine = _engine(request)
    scope = parse_scope(body.scope)
    limit = usd_to_nanos(parse_usd(body.limit_usd, param="limit_usd"))

    def change() -> Budget:
        team_id = _owning_team(engine, who, scope, body.scope_id)
        return set_budget(
            engine,
            scope=scope,
            scope_id=body.scope_id,
            period=body.period,
            limit_nanos=limit,
            hard=body.hard,
            alert_at_fraction=body.alert_at_fraction,
            team_id=team_id,
            actor=actor_of(who),
        )

    return BudgetOut.of(await _changed(request, change))


@router.get("/budgets", response_model=BudgetList, tags=["budgets"], responses=ERRORS)
def read_budgets(
    request: Request,
    who: Caller,
    scope: Annotated[str | None, Query()] = None,
    scope_id: Annotated[str | None, Query()] = None,
    team_id: Annotated[str | None, Query(description="Only this team's budgets")] = None,
) -> BudgetList:
    """Budgets the caller may see: all for admins, its team's for others."""
    team = _visible_team(who, team_id)
    if team is False:
        return BudgetList(data=[])
    found = list_budgets(_engine(request), team_id=team, scope=scope, scope_id=scope_id)
    return BudgetList(data=[BudgetOut.of(b) for b in found])


@router.get("/budgets/{budget_id}", response_model=BudgetOut, tags=["budgets"], responses=ERRORS)
def read_budget(budget_id: str, request: Request, who: Caller) -> BudgetOut:
    """One budget with its current window's spent, reserved and remaining amounts (from
    the spend ledger: every gateway process's spend)."""
    engine = _engine(request)
    budget = _visible_budget(engine, who, budget_id)
    return BudgetOut.of(budget, budget_status(engine, budget))


@router.delete("/budgets/{budget_id}", response_model=BudgetOut, tags=["budgets"], responses=ERRORS)
async def remove_budget(budget_id: str, request: Request, who: Caller) -> BudgetOut:
    engine = _engine(request)

    def change() -> Budget:
        budget = _visible_budget(engine, who, budget_id)
        require_owner_admin(who, budget.team_id)
        return delete_budget(engine, budget_id, actor=actor_of(who))

    return BudgetOut.of(await _changed(request, change))


def _visible_limit(engine: Engine, who: Principal, limit_id: str) -> RateLimit:
    limit = get_rate_limit(engine, limit_id)
    _require_visible(who, limit.team_id, f"No rate limit {limit_id!r}.")
    return limit


@router.post("/limits", response_model=RateLimitOut, status_code=201, tags=["rate limits"], responses=ERRORS)
async def create_rate_limit(body: RateLimitIn, request: Request, who: Caller) -> RateLimitOut:
    """Set the requests- and tokens-per-minute limit of a key or team (replacing the one
    there is: a kind left out is then no longer limited)."""
    engine = _engine(request)
    scope = parse_limit_scope(body.scope)

    def change() -> RateLimit:
        team_id = _owning_team(engine, who, scope, body.scope_id)
        return set_rate_limit(
            engine,
            scope=scope,
            scope_id=body.scope_id,
            rpm=body.rpm,
            tpm=body.tpm,
            team_id=team_id,
            actor=actor_of(who),
        )

    return RateLimitOut.of(await _changed(request, change))


@router.get("/limits", response_model=RateLimitList, tags=["rate limits"], responses=ERRORS)
def read_rate_limits(
    request: Request,
    who: Caller,
    scope: Annotated[str | None, Query()] = None,
    scope_id: Annotated[str | None, Query()] = None,
    team_id: Annotated[str | None, Query(description="Only this team's rate limits")] = None,
) -> RateLimitList:
    """Rate limits the caller may see: all for admins, its team's for others."""
    team = _visible_team(who, team_id)
    if team is False:
        return RateLimitList(data=[])
    found = list_rate_limits(_engine(request), team_id=team, scope=scope, scope_id=scope_id)
    return RateLimitList(data=[RateLimitOut.of(limit) for limit in found])


@router.delete("/limits/{limit_id}", response_model=RateLimitOut, tags=["rate limits"], responses=ERRORS)
async def remove_rate_limit(limit_id: str, request: Request, who: Caller) -> RateLimitOut:
    engine = _engine(request)

    def change() -> RateLimit:
        limit = _visible_limit(engine, who, limit_id)
        require_owner_admin(who, limit.team_id)
        return delete_rate_limit(engine, limit_id, actor=actor_of(who))

    return RateLimitOut.of(await _changed(request, change))


@router.get("/prices", response_model=PriceList, tags=["prices"], responses=ERRORS)
def read_prices(
    request: Request,
    who: Caller,
    model: Annotated[str | None, Query(description="Only this model (aliases and dated ids resolve)")] = None,
    at: Annotated[datetime | None, Query(description="Prices in force at this time (default: now)")] = None,
) -> PriceList:
    """The price of each model and token type in force, and where it comes from (builtin,
    config or api)."""
    ledger = _ledger(request)
    table = (
        ledger.prices if ledger is not None else load_price_table(_engine(request), _spend_settings(request))
    )
    moment = at or datetime.now(UTC)
    return PriceList(data=[PriceOut.of(p) for p in table.in_force(moment, model)])


def _spend_settings(request: Request) -> SpendSettings:
    settings: SpendSettings | None = getattr(request.app.state, "spend_settings", None)
    return settings or SpendSettings()


@router.post("/prices", response_model=PriceOut, status_code=201, tags=["prices"], responses=ERRORS)
async def create_price(body: PriceIn, request: Request, who: Caller) -> PriceOut:
    """Add a price in force from ``effective_from``; requests already made keep their cost."""
    require_admin(who)
    engine = _engine(request)

    def change() -> Price:
        return set_price(
            engine,
            model=body.model,
            token_type=body.token_type,
            usd_per_million=body.usd_per_million,
            effective_from=body.effective_from,
            actor=actor_of(who),
        )

    return PriceOut.of(await _changed(request, change))


@router.get("/usage", response_model=UsageList, tags=["usage"], responses=ERRORS)
def read_usage(
    request: Request,
    who: Caller,
    by: Annotated[str, Query(description="Comma-separated: key, team, user, model, day")] = "team,model",
    since: Annotated[str | None, Query(description="7d, 12h, 30m or an ISO time")] = None,
    until: Annotated[str | None, Query(description="ISO time or duration before now")] = None,
    team_id: Annotated[str | None, Query()] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Requests, tokens, cost and cache savings from the request log. Team admins and
    members see their own team only."""
    team = _visible_team(who, team_id)
    if team is False:
        raise PermissionDenied("This key belongs to no team: it can read no usage.")
    now = datetime.now(UTC)
    groups = parse_group_by(by)
    since_at = parse_moment(since, now, param="since") if since else None
    until_at = parse_moment(until, now, param="until") if until else None
    rows = usage_report(_engine(request), group_by=groups, since=since_at, until=until_at, team_id=team)
    if format == "csv":
        return Response(usage_csv(rows, groups), media_type="text/csv")
    return UsageList(group_by=list(groups), since=since_at, until=until_at, data=[r.as_json() for r in rows])
