"""``keel teams``, ``keel keys``, ``keel admin init`` and ``keel audit``: access control at
the command line, working directly on the configured store (as the operator, who holds
the database and so is trusted like an admin; the audit log names them ``cli:<user>``).

A new key is printed alone on stdout (so ``KEY=$(keel keys create ...)`` works) and the
notice that it is shown only once goes to stderr.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from keel.access import AccessAdmin, Actor, ApiKey, CreatedKey, Team
from keel.cli._common import (
    ConfigOption,
    JsonOption,
    fail,
    find_team_id,
    migrated_store,
    print_json,
    table_console,
)
from keel.core import InvalidRequest
from keel.store import AuditEntry

teams_app = typer.Typer(name="teams", help="Manage teams.", no_args_is_help=True)
keys_app = typer.Typer(name="keys", help="Manage virtual keys.", no_args_is_help=True)
admin_app = typer.Typer(name="admin", help="Set up administration.", no_args_is_help=True)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, option: str) -> timedelta:
    """``90`` (seconds), ``30m``, ``12h``, ``90d``, ``2w``."""
    match = _DURATION.match(text)
    if match is None:
        raise InvalidRequest(f"{option} takes a duration such as 3600, 30m, 12h, 90d or 2w; got {text!r}")
    amount, unit = match.groups()
    try:
        return timedelta(**{_UNITS[unit.lower()]: int(amount)})
    except OverflowError:
        raise InvalidRequest(f"{option} is too long: {text!r}") from None


def parse_time(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(f"{option} takes an ISO time such as 2030-01-31T12:00; got {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


GuardPolicyOption = Annotated[
    str | None,
    typer.Option(
        "--guard-policy",
        help="A guard policy from keel.yaml (guards.policies) for its requests; overrides the route's.",
    ),
]


@contextmanager
def _access(config: Path | None) -> Iterator[AccessAdmin]:
    with migrated_store(config) as (engine, _settings):
        yield AccessAdmin(engine)


# -- teams -------------------------------------------------------------------------------


@teams_app.command("create")
def create_team(
    name: Annotated[str, typer.Argument(help="The team's name (unique).")],
    guard_policy: GuardPolicyOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Create a team."""
    with _access(config) as access:
        team = access.create_team(Actor.cli(), name, guard_policy=guard_policy)
    if as_json:
        print_json(_team_json(team))
    else:
        typer.echo(f"created team {team.name} ({team.id})")


@teams_app.command("list")
def list_teams(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """List the teams."""
    with _access(config) as access:
        teams = access.list_teams(Actor.cli())
    if as_json:
        print_json([_team_json(team) for team in teams])
        return
    if not teams:
        typer.echo("no teams yet: create one with `keel teams create NAME`", err=True)
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "name", "created (UTC)"):
        table.add_column(column, no_wrap=True)
    for team in teams:
        table.add_row(team.id, escape(team.name), _when(team.created_at))
    table_console().print(table)


@teams_app.command("delete")
def delete_team(
    team: Annotated[str, typer.Argument(help="The team's name or id.")],
    config: ConfigOption = None,
) -> None:
    """Delete a team that has no active keys."""
    actor = Actor.cli()
    with _access(config) as access:
        deleted = access.delete_team(actor, access.find_team(actor, team).id)
    typer.echo(f"deleted team {deleted.name} ({deleted.id})")


# -- keys --------------------------------------------------------------------------------


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Argument(help="What the key is for (shown in lists).")],
    team: Annotated[str | None, typer.Option("--team", "-t", help="The team's name or id.")] = None,
    role: Annotated[
        str, typer.Option("--role", "-r", help="admin, team_admin, member or service (data plane only).")
    ] = "service",
    models: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="A model the key may call (repeat; default: any)."),
    ] = None,
    ttl: Annotated[str | None, typer.Option("--ttl", help="Expire after: 3600, 30m, 12h, 90d, 2w.")] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Expire at this ISO time (UTC if naive).")
    ] = None,
    guard_policy: GuardPolicyOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Create a key and print it (the only time it is shown)."""
    actor = Actor.cli()
    with _access(config) as access:
        team_id = find_team_id(access, team)
        created = access.create_key(
            actor,
            name=name,
            role=role,
            team_id=team_id,
            models=models,
            ttl=parse_duration(ttl, "--ttl") if ttl is not None else None,
            expires_at=parse_time(expires, "--expires") if expires is not None else None,
            guard_policy=guard_policy,
        )
        _print_created(created, access.now(), as_json)


@keys_app.command("list")
def list_keys(
    team: Annotated[str | None, typer.Option("--team", "-t", help="Only this team's keys.")] = None,
    include_inactive: Annotated[bool, typer.Option("--all", help="Also revoked and expired keys.")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List keys (never the keys themselves: their first characters)."""
    actor = Actor.cli()
    with _access(config) as access:
        team_id = find_team_id(access, team)
        keys = access.list_keys(actor, team_id=team_id, include_inactive=include_inactive)
        team_names = {t.id: t.name for t in access.list_teams(actor)}
        now = access.now()
    if as_json:
        print_json([_key_json(key, now) for key in keys])
        return
    if not keys:
        typer.echo("no keys match", err=True)
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "name", "role", "team", "key", "status", "created (UTC)", "expires (UTC)", "models"):
        table.add_column(column, no_wrap=column != "models")
    for key in keys:
        status = key.status(now)
        table.add_row(
            key.id,
            escape(key.name),
            key.role,
            escape(team_names.get(key.team_id, key.team_id)) if key.team_id else "-",
            f"{key.prefix}…",
            status if status == "active" else f"[red]{status}[/red]",
            _when(key.created_at),
            _when(key.expires_at),
            escape(", ".join(key.allowed_models)) if key.allowed_models is not None else "any",
        )
    table_console().print(table)


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_...), as `keel keys list` shows.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key: it fails from the next request on."""
    with _access(config) as access:
        key = access.revoke_key(Actor.cli(), key_id)
    typer.echo(f"revoked key {key.id} ({key.name})")


@keys_app.command("rotate")
def rotate_key(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_...).")],
    grace: Annotated[
        str | None, typer.Option("--grace", help="Keep the old key working this long: 30m, 12h, 1d.")
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Replace a key by a new one with the same settings, and print the new key."""
    with _access(config) as access:
        created = access.rotate_key(
            Actor.cli(), key_id, grace=parse_duration(grace, "--grace") if grace is not None else None
        )
        _print_created(created, access.now(), as_json)


# -- admin init and audit ----------------------------------------------------------------


@admin_app.command("init")
def admin_init(
    force: Annotated[
        bool, typer.Option("--force", help="Add another admin key even though one exists.")
    ] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Create the first admin key and print it (the only time it is shown)."""
    actor = Actor.cli()
    with _access(config) as access:
        created = access.ensure_first_admin(actor)
        if created is None:
            if not force:
                fail("an active admin key exists already: use --force to add another")
            created = access.create_key(actor, name="admin", role="admin")
        _print_created(created, access.now(), as_json)


def audit(
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many entries, newest first.")] = 50,
    team: Annotated[str | None, typer.Option("--team", "-t", help="Only changes within this team.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Show the audit log: who changed what, when, before and after."""
    actor = Actor.cli()
    with _access(config) as access:
        team_id = find_team_id(access, team)
        entries = access.read_audit(actor, limit=limit, team_id=team_id)
    if as_json:
        print_json([_audit_json(entry) for entry in entries])
        return
    if not entries:
        typer.echo("no audit entries", err=True)
        return
    table = Table(box=None, header_style="bold")
    for column in ("time (UTC)", "actor", "action", "target", "team", "change"):
        table.add_column(column, no_wrap=column != "change")
    for entry in entries:
        table.add_row(
            _when(entry.at),
            escape(entry.actor),
            entry.action,
            escape(f"{entry.target_type} {entry.target_id or ''}".strip()),
            entry.team_id or "-",
            escape(_change_summary(entry)),
        )
    table_console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(teams_app)
    app.add_typer(keys_app)
    app.add_typer(admin_app)
    app.command("audit")(audit)


# -- output ------------------------------------------------------------------------------


def _print_created(created: CreatedKey, now: datetime, as_json: bool) -> None:
    key = created.key
    if as_json:
        print_json(_key_json(key, now) | {"key": created.secret})
    else:
        team = f", team {key.team_id}" if key.team_id else ""
        typer.echo(f"created {key.role} key {key.id} ({key.name}{team}):", err=True)
        typer.echo(created.secret)
    typer.echo("Store it now: Keel keeps only its hash and cannot show it again.", err=True)


def _team_json(team: Team) -> dict[str, Any]:
    return {
        "id": team.id,
        "name": team.name,
        "created_at": team.created_at.isoformat(),
        "metadata": team.metadata,
        "guard_policy": team.guard_policy,
    }


def _key_json(key: ApiKey, now: datetime) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "role": key.role,
        "team_id": key.team_id,
        "prefix": key.prefix,
        "status": key.status(now),
        "created_at": key.created_at.isoformat(),
        "created_by": key.created_by,
        "expires_at": _iso(key.expires_at),
        "revoked_at": _iso(key.revoked_at),
        "models": list(key.allowed_models) if key.allowed_models is not None else None,
        "rotated_from": key.last_rotated_from,
        "guard_policy": key.guard_policy,
    }


def _audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "team_id": entry.team_id,
        "before": entry.before,
        "after": entry.after,
    }


def _change_summary(entry: AuditEntry) -> str:
    """The fields that changed (``name: a -> b``), or what was created or deleted."""
    before, after = entry.before or {}, entry.after or {}
    if before and after:
        changed = [k for k in sorted(before.keys() | after.keys()) if before.get(k) != after.get(k)]
        return "; ".join(f"{k}: {before.get(k)} -> {after.get(k)}" for k in changed)
    shown = after or before
    return ", ".join(f"{k}={v}" for k, v in shown.items() if k in ("name", "role", "team_id", "prefix"))


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
