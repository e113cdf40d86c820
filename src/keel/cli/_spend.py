"""``keel budgets``, ``keel limits``, ``keel prices`` and ``keel usage``: spend control at the command line,
working directly on the configured store (as the operator; the audit log names them
``cli:<user>``). Gateways pick changes up at their next poll of the ``spend`` topic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from keel.access import AccessAdmin, Actor
from keel.cli._common import (
    ConfigOption,
    JsonOption,
    find_team_id,
    migrated_store,
    print_json,
    table_console,
)
from keel.core import InvalidRequest
from keel.spend import (
    Budget,
    BudgetStatus,
    Price,
    RateLimit,
    budget_status,
    delete_budget,
    delete_rate_limit,
    format_usd,
    list_budgets,
    list_rate_limits,
    load_price_table,
    parse_group_by,
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

budgets_app = typer.Typer(name="budgets", help="Set, list and delete budgets.", no_args_is_help=True)
limits_app = typer.Typer(
    name="limits",
    help="Set, list and delete requests- and tokens-per-minute limits on keys and teams.",
    no_args_is_help=True,
)
prices_app = typer.Typer(name="prices", help="List and set model prices.", no_args_is_help=True)

# -- budgets -----------------------------------------------------------------------------


@budgets_app.command("set")
def set_budget_command(
    scope: Annotated[str, typer.Option("--scope", help="key, team, end_user or model.")],
    scope_id: Annotated[
        str, typer.Option("--id", help="The key id, team (name or id), end-user id or model name.")
    ],
    limit: Annotated[str, typer.Option("--limit", help="The limit in USD, e.g. 250 or 12.50.")],
    period: Annotated[str, typer.Option("--period", help="day, week, month or total.")] = "month",
    soft: Annotated[bool, typer.Option("--soft", help="Allow and alert instead of refusing.")] = False,
    alert_at: Annotated[
        float | None, typer.Option("--alert-at", help="Alert at this fraction of the limit.")
    ] = 0.8,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Set the budget of a key, team, end user or model for a period (replacing the one
    there is)."""
    with migrated_store(config) as (engine, _settings):
        kind = parse_scope(scope)
        limit_nanos = usd_to_nanos(parse_usd(limit, param="--limit"))
        team_id = None
        access, actor = AccessAdmin(engine), Actor.cli()
        if kind == "team":
            scope_id = team_id = access.find_team(actor, scope_id).id
        elif kind == "key":
            team_id = access.get_key(actor, scope_id).team_id
        budget = set_budget(
            engine,
            scope=kind,
            scope_id=scope_id,
            period=period,
            limit_nanos=limit_nanos,
            hard=not soft,
            alert_at_fraction=alert_at,
            team_id=team_id,
            actor=actor.label,
        )
    if as_json:
        print_json(_budget_json(budget))
    else:
        kind_text = "soft" if not budget.hard else "hard"
        typer.echo(
            f"{budget.id}: {kind_text} {budget.period} budget of ${format_usd(budget.limit_nanos)} "
            f"on {budget.scope} {budget.scope_id}"
        )


@budgets_app.command("list")
def list_budgets_command(
    team: Annotated[str | None, typer.Option("--team", help="Only this team's budgets (name or id).")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Budgets with what their current window has spent (settled plus open reservations)."""
    with migrated_store(config) as (engine, _settings):
        team_id = find_team_id(AccessAdmin(engine), team)
        statuses = [budget_status(engine, b) for b in list_budgets(engine, team_id=team_id)]
    if as_json:
        print_json([_budget_json(s.budget, s) for s in statuses])
        return
    if not statuses:
        typer.echo("no budgets", err=True)
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "scope", "scope id", "period", "kind", "limit $", "spent $", "reserved $", "left $"):
        table.add_column(column, justify="right" if column.endswith("$") else "left")
    for status in statuses:
        budget = status.budget
        table.add_row(
            budget.id,
            budget.scope,
            escape(budget.scope_id),
            budget.period,
            "hard" if budget.hard else "soft",
            format_usd(budget.limit_nanos),
            format_usd(status.spent),
            format_usd(status.reserved),
            format_usd(max(0, status.remaining)),
        )
    table_console().print(table)


@budgets_app.command("delete")
def delete_budget_command(
    budget_id: Annotated[str, typer.Argument(help="The budget's id (see `keel budgets list`).")],
    config: ConfigOption = None,
) -> None:
    """Delete a budget."""
    with migrated_store(config) as (engine, _settings):
        budget = delete_budget(engine, budget_id, actor=Actor.cli().label)
    typer.echo(f"deleted {budget.id} ({budget.period} budget on {budget.scope} {budget.scope_id})")


def _budget_json(budget: Budget, status: BudgetStatus | None = None) -> dict[str, Any]:
    data = budget.as_json() | {"limit_usd": format_usd(budget.limit_nanos)}
    if status is not None:
        data |= {
            "window_start": status.window_start.isoformat(),
            "window_end": status.window_end.isoformat() if status.window_end else None,
            "spent_nanos": status.spent,
            "reserved_nanos": status.reserved,
            "remaining_nanos": status.remaining,
        }
    return data


# -- rate limits -------------------------------------------------------------------------


@limits_app.command("set")
def set_limit_command(
    key: Annotated[str | None, typer.Option("--key", help="Limit this key (its id).")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Limit this team (name or id).")] = None,
    rpm: Annotated[int | None, typer.Option("--rpm", help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", help="Tokens per minute.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Set the rate limit of a key or team, replacing the one there is.

    A kind left out (--rpm or --tpm) is then no longer limited."""
    with migrated_store(config) as (engine, _settings):
        if (key is None) == (team is None):
            raise InvalidRequest("Name exactly one of --key ID or --team NAME_OR_ID.")
        access, actor = AccessAdmin(engine), Actor.cli()
        if team is not None:
            scope, scope_id = "team", access.find_team(actor, team).id
            team_id: str | None = scope_id
        else:
            assert key is not None
            scope, scope_id = "key", key
            team_id = access.get_key(actor, key).team_id
        limit = set_rate_limit(
            engine, scope=scope, scope_id=scope_id, rpm=rpm, tpm=tpm, team_id=team_id, actor=actor.label
        )
    if as_json:
        print_json(limit.as_json())
    else:
        typer.echo(f"{limit.id}: {_per_minute_text(limit)} on {limit.scope} {limit.scope_id}")


@limits_app.command("list")
def list_limits_command(
    team: Annotated[
        str | None, typer.Option("--team", help="Only this team's rate limits (name or id).")
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Rate limits on keys and teams (limits on models are in keel.yaml)."""
    with migrated_store(config) as (engine, _settings):
        team_id = find_team_id(AccessAdmin(engine), team)
        found = list_rate_limits(engine, team_id=team_id)
    if as_json:
        print_json([limit.as_json() for limit in found])
        return
    if not found:
        typer.echo("no rate limits", err=True)
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "scope", "scope id", "rpm", "tpm", "team"):
        table.add_column(column, justify="right" if column in ("rpm", "tpm") else "left")
    for limit in found:
        table.add_row(
            limit.id,
            limit.scope,
            escape(limit.scope_id),
            "-" if limit.rpm is None else str(limit.rpm),
            "-" if limit.tpm is None else str(limit.tpm),
            limit.team_id or "-",
        )
    table_console().print(table)


@limits_app.command("delete")
def delete_limit_command(
    limit_id: Annotated[str, typer.Argument(help="The rate limit's id (see `keel limits list`).")],
    config: ConfigOption = None,
) -> None:
    """Delete a rate limit."""
    with migrated_store(config) as (engine, _settings):
        limit = delete_rate_limit(engine, limit_id, actor=Actor.cli().label)
    typer.echo(f"deleted {limit.id} ({_per_minute_text(limit)} on {limit.scope} {limit.scope_id})")


def _per_minute_text(limit: RateLimit) -> str:
    parts = [f"{limit.rpm} requests" if limit.rpm else "", f"{limit.tpm} tokens" if limit.tpm else ""]
    return " and ".join(p for p in parts if p) + " per minute"


# -- prices ------------------------------------------------------------------------------


@prices_app.command("list")
def list_prices_command(
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    at: Annotated[str | None, typer.Option("--at", help="In force at this ISO time (default: now).")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """The price of each model and token type in force (USD per 1M tokens)."""
    with migrated_store(config) as (engine, settings):
        now = datetime.now(UTC)
        moment = parse_moment(at, now, param="--at") if at is not None else now
        found = load_price_table(engine, settings.spend).in_force(moment, model)
    if as_json:
        print_json([_price_json(p) for p in found])
        return
    if not found:
        typer.echo(f"no price for {model}" if model else "no prices", err=True)
        return
    table = Table(box=None, header_style="bold")
    for column in ("model", "token type", "USD / 1M", "since", "source"):
        table.add_column(column, justify="right" if column == "USD / 1M" else "left")
    for price in found:
        table.add_row(
            escape(price.model),
            price.token_type,
            format(price.usd_per_million.normalize(), "f"),
            price.effective_from.strftime("%Y-%m-%d %H:%M"),
            price.source,
        )
    table_console().print(table)


@prices_app.command("set")
def set_price_command(
    model: Annotated[str, typer.Argument(help="The model id (as routes and providers name it).")],
    token_type: Annotated[str, typer.Argument(help="input, cached_input or output.")],
    usd_per_million: Annotated[str, typer.Argument(help="USD per 1M tokens, e.g. 2.50.")],
    effective_from: Annotated[
        str | None, typer.Option("--from", help="In force from this ISO time or date (default: now).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Add a price in force from now (or --from); earlier requests keep their cost."""
    with migrated_store(config) as (engine, _settings):
        start = parse_moment(effective_from, datetime.now(UTC), param="--from") if effective_from else None
        price = set_price(
            engine,
            model=model,
            token_type=token_type,
            usd_per_million=usd_per_million,
            effective_from=start,
            actor=Actor.cli().label,
        )
    typer.echo(
        f"{price.model} {price.token_type}: ${format(price.usd_per_million.normalize(), 'f')} per 1M tokens "
        f"from {price.effective_from.isoformat()}"
    )


def _price_json(price: Price) -> dict[str, Any]:
    return {
        "model": price.model,
        "token_type": price.token_type,
        "usd_per_million": format(price.usd_per_million.normalize(), "f"),
        "effective_from": price.effective_from.isoformat(),
        "source": price.source,
    }


# -- usage -------------------------------------------------------------------------------


def usage(
    by: Annotated[
        str, typer.Option("--by", help="Comma-separated: key, team, user, model, day.")
    ] = "team,model",
    since: Annotated[
        str, typer.Option("--since", help="7d, 12h, 30m or an ISO time (UTC if naive).")
    ] = "30d",
    until: Annotated[str | None, typer.Option("--until", help="ISO time or duration before now.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Only this team (name or id).")] = None,
    output: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    config: ConfigOption = None,
) -> None:
    """Spend, tokens and requests from the request log, with cache savings."""
    with migrated_store(config) as (engine, _settings):
        if output not in ("table", "json", "csv"):
            raise InvalidRequest(f"--format takes table, json or csv; got {output!r}")
        now = datetime.now(UTC)
        groups = parse_group_by(by)
        since_at = parse_moment(since, now, param="--since")
        until_at = parse_moment(until, now, param="--until") if until else None
        team_id = find_team_id(AccessAdmin(engine), team)
        rows = usage_report(engine, group_by=groups, since=since_at, until=until_at, team_id=team_id)
    if output == "json":
        print_json([row.as_json() for row in rows])
    elif output == "csv":
        typer.echo(usage_csv(rows, groups), nl=False)
    elif not rows:
        typer.echo("no requests in this period", err=True)
    else:
        table = Table(box=None, header_style="bold")
        for group in groups:
            table.add_column(group)
        for column in (
            "requests",
            "input",
            "cached",
            "output",
            "cost $",
            "saved $",
            "cache hits",
            "unpriced",
        ):
            table.add_column(column, justify="right")
        for row in rows:
            table.add_row(
                *[escape(row.group[g] or "-") for g in groups],
                str(row.requests),
                str(row.input_tokens),
                str(row.cached_input_tokens),
                str(row.output_tokens),
                format_usd(row.cost_nanos),
                format_usd(row.saved_nanos),
                str(row.cache_hits),
                str(row.unpriced_requests),
            )
        table_console().print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(budgets_app)
    app.add_typer(limits_app)
    app.add_typer(prices_app)
    app.command("usage")(usage)
