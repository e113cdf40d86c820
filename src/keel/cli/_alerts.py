"""``keel alerts``: the configured rules and their state, the history of notifications,
a test message to a channel, and one evaluation on demand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from keel.alerts import (
    AlertEngine,
    AlertEvent,
    SeriesState,
    alert_history,
    alert_states,
    build_channels,
    build_rules,
    format_window,
    sample_message,
)
from keel.cli._common import (
    ConfigOption,
    JsonOption,
    fail,
    load_settings_for_cli,
    migrated_store,
    print_json,
    reported_errors,
    table_console,
)

alerts_app = typer.Typer(
    name="alerts",
    help="Alert rules, their state and history; test a channel; evaluate now.",
    no_args_is_help=True,
)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:,.4g}" if abs(value) < 10_000 else f"{value:,.0f}"


def _labels(labels: Any) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(dict(labels).items()))


@alerts_app.command("list")
def list_command(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """The configured rules, each with the state of its series (firing, pending, ok)."""
    with migrated_store(config) as (engine, settings):
        rules = build_rules(settings)
        states = alert_states(engine)
    by_rule: dict[str, list[SeriesState]] = {}
    for state in states:
        by_rule.setdefault(state.rule, []).append(state)
    if as_json:
        print_json(
            [
                {
                    "name": rule.name,
                    "kind": rule.kind,
                    "threshold": rule.threshold,
                    "window_s": rule.window.total_seconds(),
                    "for_s": rule.for_.total_seconds(),
                    "severity": rule.severity,
                    "channels": list(rule.channels),
                    "series": [state.as_json() for state in by_rule.get(rule.name, [])],
                }
                for rule in rules
            ]
        )
        return
    if not rules:
        typer.echo("no alert rules (alerts.rules in keel.yaml)", err=True)
        return
    table = Table(box=None, header_style="bold")
    for column in ("rule", "kind", "threshold", "window", "for", "severity", "channels", "state", "series"):
        table.add_column(column)
    for rule in rules:
        series = [state for state in by_rule.get(rule.name, []) if state.state != "ok"]
        worst = "firing" if any(s.state == "firing" for s in series) else "pending" if series else "ok"
        shown = "; ".join(f"{s.state}: {s.summary}" for s in series)
        table.add_row(
            escape(rule.name),
            rule.kind,
            _number(rule.threshold) or "(own)",
            format_window(rule.window),
            format_window(rule.for_) if rule.for_.total_seconds() else "",
            rule.severity,
            escape(", ".join(rule.channels)),
            worst,
            escape(shown),
        )
    table_console().print(table)


def _events_table(events: list[AlertEvent]) -> None:
    table = Table(box=None, header_style="bold")
    for column in (
        "id",
        "at",
        "rule",
        "state",
        "severity",
        "value",
        "threshold",
        "labels",
        "notified",
        "summary",
    ):
        table.add_column(column, justify="right" if column in ("id", "value", "threshold") else "left")
    for event in events:
        notified = ", ".join(
            f"{name}:{'ok' if outcome.get('ok') else 'failed'}"
            for name, outcome in event.notifications.items()
        )
        table.add_row(
            str(event.id),
            event.at.isoformat(timespec="seconds"),
            escape(event.rule),
            event.state,
            event.severity,
            _number(event.value),
            _number(event.threshold),
            escape(_labels(event.labels)),
            escape(notified),
            escape(event.summary),
        )
    table_console().print(table)


@alerts_app.command("history")
def history_command(
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="How many events.")] = 50,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """The latest firing and resolved events, newest first, with what each channel did."""
    with migrated_store(config) as (engine, _settings):
        events = alert_history(engine, limit=limit)
    if as_json:
        print_json([event.as_json() for event in events])
    elif not events:
        typer.echo("no alerts yet", err=True)
    else:
        _events_table(events)


@alerts_app.command("test")
def send_test_command(
    channel: Annotated[str, typer.Argument(help="A channel's name under alerts.channels.")],
    config: ConfigOption = None,
) -> None:
    """Send a test notification to CHANNEL (retrying as configured)."""
    with reported_errors():
        settings = load_settings_for_cli(config)
        channels = build_channels(settings)
    if channel not in channels:
        known = ", ".join(sorted(channels)) or "none are configured"
        fail(f"no alert channel {channel!r} (known: {known})")
    message = sample_message(channel, datetime.now(UTC), settings.alerts.console_url)
    outcome = asyncio.run(channels[channel].deliver(message))
    if not outcome.ok:
        fail(f"{channel}: {outcome.error} (after {outcome.attempts} attempts)")
    typer.echo(f"sent a test notification to {channel} ({outcome.attempts} attempt(s))")


@alerts_app.command("check")
def check_command(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Evaluate every rule once now, as the server does (notifying what fires or resolves)."""
    with migrated_store(config) as (engine, settings):
        events = asyncio.run(AlertEngine(settings.alerts, engine).evaluate_once())
    if as_json:
        print_json([event.as_json() for event in events])
    elif not events:
        typer.echo("nothing fired or resolved")
    else:
        _events_table(events)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app)
