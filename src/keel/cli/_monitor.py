"""``keel monitor``: drift of the traffic on demand, the latest stored results, the
signals there are, and a simulated shift replayed through a gateway."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from keel.cli._common import (
    ConfigOption,
    JsonOption,
    fail,
    migrated_store,
    print_json,
    reported_errors,
    table_console,
)
from keel.core._settings_alerts import parse_duration
from keel.core._settings_monitor import MonitorSettings
from keel.monitor import (
    DriftResult,
    DriftRunner,
    Embedder,
    GroupFilter,
    WindowSpec,
    hashing_embedder,
    latest_drift,
    make_embedder,
    signals,
)
from keel.monitor._simulate import simulate
from keel.monitor._workload import SHIFTS

monitor_app = typer.Typer(
    name="monitor",
    help="Drift of inputs, outputs and quality signals; simulate a shift.",
    no_args_is_help=True,
)

EmbedderOption = Annotated[
    str | None,
    typer.Option("--embedder", help="local (all-minilm-l6-v2), hashing or none. Default: monitor.embedder."),
]


def _seconds(value: str, option: str) -> timedelta:
    try:
        return timedelta(seconds=float(parse_duration(value)))
    except (ValueError, TypeError):
        fail(f"{option}: not a duration: {value!r} (write e.g. 30m, 1h, 7d)")


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option}: not a date or time: {value!r} (write e.g. 2026-01-31 or 2026-01-31T12:00Z)")
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def _monitor_settings(settings: Any, embedder: str | None) -> MonitorSettings:
    found = getattr(settings, "monitor", None)
    base = found if isinstance(found, MonitorSettings) else MonitorSettings()
    if embedder is not None:
        if embedder not in ("local", "hashing", "none"):
            fail(f"--embedder: {embedder!r} is not one of local, hashing, none")
        base = base.model_copy(update={"embedder": embedder})
    return base


def _embedder(monitor: MonitorSettings, settings: Any) -> Embedder | None:
    return make_embedder(monitor, settings.home)


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _print(results: list[DriftResult], as_json: bool, *, show_skipped: bool = True) -> None:
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    table = Table(
        "route", "signal", "detector", "n ref / cur", "score", "p", "threshold", "drift", "mean ref → cur"
    )
    for r in sorted(results, key=lambda r: (r.route, not r.drifted, r.signal)):
        if r.score is None and not show_skipped:
            continue
        verdict = "[red]DRIFT[/red]" if r.drifted else ("skipped" if r.score is None else "ok")
        means = (
            f"{_number(r.reference_mean)} → {_number(r.current_mean)}" if r.reference_mean is not None else ""
        )
        table.add_row(
            r.route or "(all)",
            r.signal,
            r.detector,
            f"{r.n_reference:,} / {r.n_current:,}",
            _number(r.score),
            _number(r.p_value),
            _number(r.threshold),
            verdict,
            means,
        )
    table_console().print(table)
    drifted = sorted({r.signal for r in results if r.drifted})
    typer.echo(f"drifted: {', '.join(drifted)}" if drifted else "no drift")


@monitor_app.command("drift")
def drift_command(
    route: Annotated[
        str | None, typer.Option("--route", "-r", help="One route (default: each route).")
    ] = None,
    window: Annotated[str, typer.Option("--window", "-w", help="The current window, ending now.")] = "1h",
    reference: Annotated[
        str, typer.Option("--reference", help="The reference: this long before the window.")
    ] = "7d",
    reference_from: Annotated[
        str | None, typer.Option("--reference-from", help="A fixed reference period.")
    ] = None,
    reference_to: Annotated[str | None, typer.Option("--reference-to")] = None,
    signal: Annotated[list[str] | None, typer.Option("--signal", "-s", help="Only these signals.")] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="One prompt version (name@3).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="One deployment.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="End the window here, not now.")] = None,
    embedder: EmbedderOption = None,
    store: Annotated[bool, typer.Option("--store/--no-store", help="Record the results.")] = True,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Test the current window against the reference, signal by signal."""
    if (reference_from is None) != (reference_to is None):
        fail("--reference-from and --reference-to go together")
    windows = WindowSpec(
        _seconds(window, "--window"),
        _seconds(reference, "--reference"),
        _moment(reference_from, "--reference-from"),
        _moment(reference_to, "--reference-to"),
    )
    now = _moment(until, "--until")
    with migrated_store(config) as (engine, settings):
        monitor = _monitor_settings(settings, embedder)
        with reported_errors():
            found = _embedder(monitor, settings)
            try:
                runner = DriftRunner(
                    engine, monitor, embedder=found, signal_names=signal or None, windows=windows
                )
                results = asyncio.run(
                    runner.run(
                        now=now, where=GroupFilter(route, prompt, model), store=store, require_data=True
                    )
                )
            finally:
                if found is not None:
                    asyncio.run(found.aclose())
    _print(results, as_json)


@monitor_app.command("latest")
def latest_command(
    route: Annotated[str | None, typer.Option("--route", "-r")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """The latest stored result of every signal (what alerts watch)."""
    with migrated_store(config) as (engine, _):
        results = latest_drift(engine, route=route)
    _print(results, as_json)


@monitor_app.command("signals")
def signals_command(as_json: JsonOption = False) -> None:
    """The signals there are: kind, where they come from, what they measure."""
    found = signals()
    if as_json:
        print_json(
            [
                {"name": s.name, "kind": s.kind, "source": s.source, "description": s.description}
                for s in found
            ]
        )
        return
    table = Table("signal", "kind", "source", "what")
    for s in found:
        table.add_row(s.name, s.kind, s.source, s.description)
    table_console().print(table)


@monitor_app.command("simulate")
def simulate_command(
    url: Annotated[str, typer.Option("--url", help="The gateway (e.g. http://127.0.0.1:4000).")],
    shift: Annotated[str, typer.Option("--shift", help=f"One of: {', '.join(SHIFTS)}.")] = "topic",
    model: Annotated[str, typer.Option("--model", "-m", help="The route to send to.")] = "chat",
    requests: Annotated[int, typer.Option("--requests", "-n", min=10, help="Requests per phase.")] = 200,
    key: Annotated[str | None, typer.Option("--key", envvar="KEEL_API_KEY", help="The gateway key.")] = None,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Test drift in the store.")] = True,
    embedder: EmbedderOption = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1)] = 8,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Replay a generated workload, then the same with a shift, and report what drifted."""
    if shift not in SHIFTS:
        fail(f"--shift: {shift!r} is not one of {', '.join(SHIFTS)}")
    with migrated_store(config) as (engine, settings):
        monitor = _monitor_settings(settings, embedder)
        with reported_errors():
            found = (_embedder(monitor, settings) or hashing_embedder()) if report else None
            try:
                outcome = asyncio.run(
                    simulate(
                        url,
                        shift=shift,
                        model=model,
                        requests=requests,
                        api_key=key,
                        engine=engine if report else None,
                        settings=monitor,
                        embedder=found,
                        concurrency=concurrency,
                        seed=seed,
                    )
                )
            finally:
                if found is not None:
                    asyncio.run(found.aclose())
    if as_json:
        print_json(
            {
                "shift": outcome.shift,
                "phases": [
                    {
                        "name": p.name,
                        "start": p.start.isoformat(),
                        "end": p.end.isoformat(),
                        "sent": p.sent,
                        "failed": p.failed,
                    }
                    for p in outcome.phases
                ],
                "drifted": outcome.drifted,
                "expected": outcome.expected_signal,
                "detected": outcome.detected,
                "results": [r.to_dict() for r in outcome.results],
            }
        )
        return
    for phase in outcome.phases:
        typer.echo(f"{phase.name}: {phase.sent} requests ({phase.failed} failed)")
    if report:
        _print(outcome.results, False, show_skipped=False)
        if outcome.expected_signal is not None:
            typer.echo(
                f"expected {outcome.expected_signal}: {'detected' if outcome.detected else 'NOT detected'}"
            )


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app)
