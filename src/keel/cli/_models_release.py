"""``keel models gate|promote|rollout|rollback|deployments|gates`` and ``keel models
canary status``: releasing registered model versions (keel.release) on the gateway's
routes. Registered on ``keel models`` (``keel.cli._models.models_app``).

Exit codes of ``keel models gate``: 0 the gate passed, 1 an error, 3 the gate failed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._common import ConfigOption, fail, migrated_store, print_json, reported_errors, table_console
from keel.cli._models import JsonFlag, MlflowUriOption, models_app, tracking_uri_for_cli
from keel.core import KeelSettings, NotFound
from keel.store import display_url

if TYPE_CHECKING:
    from keel.release import CanaryReport

EXIT_GATE_FAILED = 3

canary_app = typer.Typer(name="canary", help="A route's canary against production.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """The commands live on ``models_app`` (registered by ``keel.cli._models``)."""
    if not any(group.typer_instance is canary_app for group in models_app.registered_groups):
        models_app.add_typer(canary_app)


def _check_route(settings: KeelSettings, route: str) -> None:
    if route not in settings.models:
        raise NotFound(
            f"no route {route!r} in the configuration (routes: {', '.join(settings.models) or 'none'})"
        )


@models_app.command("gate")
def gate_command(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    candidate: Annotated[str, typer.Option(help="The candidate version (3, v3, an alias, latest).")],
    suite: Annotated[Path, typer.Option(help="The eval suite (YAML) whose gate decides.")],
    baseline: Annotated[
        str, typer.Option(help="The version to compare with (default: the production alias).")
    ] = "production",
    provider: Annotated[
        str | None, typer.Option(help="Serve both versions with this configured provider (default: local).")
    ] = None,
    cache: Annotated[bool, typer.Option(help="Reuse outputs of identical earlier eval cells.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    config: ConfigOption = None,
    mlflow_uri: MlflowUriOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Run SUITE on the candidate version against the baseline, both served by a
    gateway in this process, and record the verdict (needed by `keel models promote`)."""
    from keel.access import Actor
    from keel.release import GateSide, plan_gate, run_gate
    from keel.server import embedded_gateway
    from keel.training import model_path, resolve_model

    with migrated_store(config) as (engine, settings), reported_errors(display_url(settings.database_url)):
        uri = tracking_uri_for_cli(config, mlflow_uri)
        sides = []
        for ref in (
            resolve_model(name, candidate, tracking_uri=uri),
            resolve_model(name, baseline, tracking_uri=uri),
        ):
            path = ref.source if provider is not None else str(model_path(ref, tracking_uri=uri))
            sides.append(GateSide(ref.version, path))
        plan = plan_gate(settings, name, candidate=sides[0], baseline=sides[1], provider=provider)
        with embedded_gateway(plan.settings) as (_, base_url):
            outcome = asyncio.run(
                run_gate(
                    engine,
                    suite,
                    plan,
                    base_url=base_url,
                    actor=Actor.cli().label,
                    progress=not quiet,
                    use_cache=cache,
                )
            )
    record = outcome.record
    if as_json:
        print_json(record.to_json())
    else:
        from keel.evals import render_terminal

        render_terminal(outcome.results, table_console())
        verdict = "[green]passed[/green]" if record.passed else "[red]failed[/red]"
        table_console().print(
            f"gate {verdict}: {name} v{record.version} against v{record.baseline_version} "
            f"on {record.suite} (eval run {record.eval_run_id})"
            + (f" — {record.note}" if record.note else "")
        )
    if not record.passed:
        raise typer.Exit(EXIT_GATE_FAILED)


@models_app.command("promote")
def promote_command(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="The version to promote (3, v3, an alias).")],
    route: Annotated[str, typer.Option(help="The route (public model name) to serve it on.")],
    share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="The canary's share of the route's traffic.")
    ] = 0.1,
    force: Annotated[bool, typer.Option("--force", help="Promote without a passing gate (audited).")] = False,
    provider: Annotated[
        str | None, typer.Option(help="Serve it with this configured provider (default: local).")
    ] = None,
    config: ConfigOption = None,
    mlflow_uri: MlflowUriOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Start a canary: the version takes SHARE of ROUTE's traffic (refused without a
    passing gate unless --force). Running gateways pick it up within a second or so."""
    from keel.access import Actor
    from keel.release import promote
    from keel.training import model_path, resolve_model

    with migrated_store(config) as (engine, settings), reported_errors(display_url(settings.database_url)):
        _check_route(settings, route)
        uri = tracking_uri_for_cli(config, mlflow_uri)
        ref = resolve_model(name, version, tracking_uri=uri)
        path = ref.source if provider is not None else str(model_path(ref, tracking_uri=uri))
        deployment = promote(
            engine,
            route=route,
            model=name,
            version=ref.version,
            path=path,
            share=share,
            actor=Actor.cli(),
            force=force,
            provider=provider,
        )
    if as_json:
        print_json(deployment.to_json())
        return
    forced = " [yellow](forced past the gate: audited)[/yellow]" if force else ""
    table_console().print(
        f"canary {deployment.name} on {route}: {deployment.share:.0%} of its traffic{forced}\n"
        f"watch it: keel models canary status {route}; finish: keel models rollout {route}; "
        f"undo: keel models rollback {route}"
    )


@models_app.command("rollout")
def rollout_command(
    route: Annotated[str, typer.Argument(help="The route whose canary goes live.")],
    alias: Annotated[bool, typer.Option(help="Move the model's production alias to it.")] = True,
    config: ConfigOption = None,
    mlflow_uri: MlflowUriOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Make the route's canary live (all of its traffic); the deployment it replaces is
    retired (`keel models rollback` brings it back)."""
    from keel.access import Actor
    from keel.release import rollout

    with migrated_store(config) as (engine, settings), reported_errors(display_url(settings.database_url)):
        uri = tracking_uri_for_cli(config, mlflow_uri) if alias else None
        live = rollout(engine, route, actor=Actor.cli(), tracking_uri=uri)
    if as_json:
        print_json(live.to_json())
        return
    moved = f"; {live.model}@production → v{live.version}" if alias else ""
    typer.echo(f"{live.name} is live on {route}{moved}")


@models_app.command("rollback")
def rollback_command(
    route: Annotated[str, typer.Argument(help="The route to roll back.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
    config: ConfigOption = None,
    mlflow_uri: MlflowUriOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Undo the route's last release step: retire its canary, or else its live model
    (the deployment before it serves again, and the production alias moves back)."""
    from keel.access import Actor
    from keel.release import rollback

    with migrated_store(config) as (engine, settings), reported_errors(display_url(settings.database_url)):
        uri = tracking_uri_for_cli(config, mlflow_uri)
        result = rollback(engine, route, actor=Actor.cli(), reason=reason, tracking_uri=uri)
    if as_json:
        print_json(
            {
                "route": result.route,
                "retired": result.retired.to_json(),
                "restored": result.restored.to_json() if result.restored else None,
                "alias_restored_to": result.alias_restored_to,
            }
        )
        return
    serving = result.restored.name if result.restored else "the configured deployments"
    if result.retired.state == "canary":
        serving = "production alone"
    typer.echo(f"retired {result.retired.name} ({result.retired.state}) on {route}; now serving: {serving}")


@models_app.command("deployments")
def deployments_command(
    route: Annotated[str | None, typer.Argument(help="Only this route.")] = None,
    history: Annotated[bool, typer.Option("--all", help="Retired deployments too.")] = False,
    config: ConfigOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Model versions deployed on routes at run time (canary and live)."""
    from keel.release import active_deployments, deployment_history

    with migrated_store(config) as (engine, _):
        if history:
            rows = deployment_history(engine, route, limit=200)
        else:
            rows = [d for d in active_deployments(engine) if route is None or d.route == route]
    if as_json:
        print_json([d.to_json() for d in rows])
        return
    if not rows:
        typer.echo("no model deployments" + (f" on {route}" if route else ""))
        return
    from rich.table import Table

    table = Table("route", "deployment", "state", "share", "since", "by", "note")
    for d in rows:
        table.add_row(
            d.route,
            d.name,
            d.state,
            f"{d.share:.0%}",
            d.updated_at.isoformat(timespec="seconds"),
            d.created_by,
            d.note or "",
        )
    table_console().print(table)


@models_app.command("gates")
def gates_command(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    config: ConfigOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Recent gate verdicts on model versions."""
    from keel.release import list_gates

    with migrated_store(config) as (engine, _):
        records = list_gates(engine, model=name, limit=limit)
    if as_json:
        print_json([r.to_json() for r in records])
        return
    if not records:
        typer.echo("no gate verdicts")
        return
    from rich.table import Table

    table = Table("at", "model", "version", "baseline", "suite", "passed", "eval run")
    for r in records:
        table.add_row(
            r.at.isoformat(timespec="seconds"),
            r.model,
            f"v{r.version}",
            f"v{r.baseline_version}" if r.baseline_version else "-",
            r.suite,
            "yes" if r.passed else "no",
            r.eval_run_id or "",
        )
    table_console().print(table)


@canary_app.command("status")
def canary_status(
    route: Annotated[str, typer.Argument(help="The route whose canary to compare.")],
    rollback: Annotated[
        bool, typer.Option(help="Roll the canary back when it crosses a threshold (release.auto_rollback).")
    ] = True,
    config: ConfigOption = None,
    as_json: JsonFlag = False,
) -> None:
    """The canary's error rate, p95 latency, feedback score and guard trigger rate
    against production's, each tested, with a verdict (and the rollback it triggers)."""
    from keel.release import check_canaries, release_settings

    with migrated_store(config) as (engine, settings), reported_errors(display_url(settings.database_url)):
        checks = check_canaries(
            engine,
            release_settings(settings),
            routes=[route],
            auto_rollback=None if rollback else False,
        )
        if not checks:
            raise NotFound(f"route {route!r} has no canary")
    check = checks[0]
    if as_json:
        print_json(check.report.to_json() | {"rolled_back": check.rolled_back is not None})
        return
    render_canary(check.report)
    if check.rolled_back is not None:
        table_console().print(f"[red]rolled back[/red]: {check.rolled_back.retired.name} retired on {route}")
    elif check.report.verdict == "rollback":
        fail("the canary crossed a threshold (automatic rollback is off): keel models rollback " + route)


def render_canary(report: CanaryReport) -> None:
    from rich.table import Table

    console = table_console()
    share = report.observed_share
    console.print(
        f"canary [bold]{report.canary.name}[/bold] on {report.route} since "
        f"{report.since.isoformat(timespec='seconds')}: {report.canary_requests} requests "
        f"(observed share {'-' if share is None else f'{share:.1%}'}, configured {report.canary.share:.0%}) "
        f"against {report.production_requests} to production ({report.production})"
    )
    table = Table("metric", "canary", "production", "n (canary/prod)", "p", "limit", "crossed")
    for c in report.checks:
        table.add_row(
            c.name,
            _number(c.canary),
            _number(c.production),
            f"{c.canary_n}/{c.production_n}",
            _number(c.p_value),
            c.limit,
            "[red]yes[/red]" if c.crossed else "no",
        )
    console.print(table)
    colour = {"healthy": "green", "rollback": "red"}.get(report.verdict, "yellow")
    console.print(f"verdict: [{colour}]{report.verdict}[/{colour}]")
    for reason in report.reasons:
        console.print(f"  {reason}")


def _number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
