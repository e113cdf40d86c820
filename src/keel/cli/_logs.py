"""``keel logs``: the most recent requests from the request log, as a table or JSON."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from keel.cli._common import (
    ConfigOption,
    fail,
    load_settings_for_cli,
    reported_errors,
    require_existing_sqlite_file,
)
from keel.core import InvalidRequest
from keel.store import RequestRecord, create_store_engine, current_revision, display_url, recent_requests

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime) -> datetime:
    """``30m``, ``1h``, ``2d`` (before ``now``) or an ISO time (naive means UTC), in UTC."""
    try:
        match = _DURATION.match(text)
        if match:
            amount, unit = match.groups()
            return now - timedelta(**{_UNITS[unit.lower()]: int(amount)})
        moment = datetime.fromisoformat(text.strip())
    except (ValueError, OverflowError):
        raise InvalidRequest(
            f"--since takes a duration such as 30m, 1h or 2d, or an ISO time; got {text!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def logs(
    model: Annotated[str | None, typer.Option("--model", help="Only this requested model.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="An HTTP status code, 'ok' or 'error'.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only requests since: 30m, 1h, 2d or an ISO time (UTC if naive)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many requests, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array of full records.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show the most recent requests the gateway handled."""
    with reported_errors():
        since_at = parse_since(since, datetime.now(UTC)) if since is not None else None
        settings = load_settings_for_cli(config)
    url = display_url(settings.database_url)
    require_existing_sqlite_file(settings.database_url)
    with reported_errors(url):
        engine = create_store_engine(settings.database_url)
        try:
            if current_revision(engine) is None:
                fail(f"no request log in {url}: run `keel db upgrade` first")
            records = recent_requests(
                engine,
                model=model,
                status=status.lower() if status is not None else None,
                since=since_at,
                limit=limit,
            )
        finally:
            engine.dispose()
    if as_json:
        typer.echo(json.dumps([_as_json(record) for record in records], ensure_ascii=False))
    elif records:
        # Piped output gets no terminal width from Rich (80 columns): give the table the
        # room its thirteen columns need rather than eliding them.
        console = Console()
        if not console.is_terminal:
            console = Console(width=200)
        console.print(_table(records))
    else:
        typer.echo("no requests match", err=True)


def _as_json(record: RequestRecord) -> dict[str, Any]:
    data = dataclasses.asdict(record)
    data["created_at"] = record.created_at.isoformat()
    return data


def _table(records: list[RequestRecord]) -> Table:
    table = Table(box=None, header_style="bold")
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("id", no_wrap=True)
    table.add_column("model")
    table.add_column("deployment")
    table.add_column("status", justify="right")
    table.add_column("attempts", justify="right")
    table.add_column("latency ms", justify="right")
    table.add_column("ttft ms", justify="right")
    table.add_column("tokens in", justify="right")
    table.add_column("cached", justify="right")
    table.add_column("out", justify="right")
    table.add_column("usage")
    table.add_column("stream")
    for record in records:
        failed = record.status >= 400 or record.error_type is not None
        status = f"[red]{record.status}[/red]" if failed else str(record.status)
        table.add_row(
            record.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            escape(record.id),
            _text(record.requested_model),
            _text(record.deployment),
            status,
            str(record.attempts),
            _number(record.latency_ms),
            _number(record.ttft_ms),
            _number(record.input_tokens),
            _number(record.cached_input_tokens),
            _number(record.output_tokens),
            record.usage_source or "-",
            "yes" if record.stream else "no",
        )
    return table


def _text(value: str | None) -> str:
    # Model names come from clients: keep Rich from reading "[...]" in them as markup.
    return escape(value) if value else "-"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        # Milliseconds: a gateway answers in well under one, so keep a decimal there.
        return f"{value:.1f}" if value < 100 else f"{value:.0f}"
    return str(value)


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)
