"""``keel eval``: run suites, list and show runs, compare two runs, build datasets.

Exit codes of ``keel eval run`` and ``keel eval compare`` (for CI): 0 the gate passed (or
there is none), 1 an error (bad suite or dataset, unreachable model ...), 3 the gate
failed, 4 the run stopped before it finished (cost cap; resume it with ``--resume``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy import Engine

from keel.cli._common import ConfigOption, migrated_store, print_json, reported_errors, table_console
from keel.core import KeelSettings
from keel.store import display_url

if TYPE_CHECKING:
    from keel.evals._matrix import PromptResolver

EXIT_GATE_FAILED = 3
EXIT_STOPPED = 4

eval_app = typer.Typer(
    name="eval",
    help="Evaluation suites: prompt × model matrices, scorers, paired comparisons and CI gates.",
    no_args_is_help=True,
)
dataset_app = typer.Typer(name="dataset", help="Build eval datasets.", no_args_is_help=True)
eval_app.add_typer(dataset_app)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app)


@eval_app.command("run")
def run(
    suite_path: Annotated[Path, typer.Argument(help="The suite's YAML file.", metavar="SUITE")],
    config: ConfigOption = None,
    gateway: Annotated[
        str | None,
        typer.Option(help="A running Keel to call (http://host:4000). Default: Keel in this process."),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="KEEL_API_KEY", help="Key for the gateway (env KEEL_API_KEY).")
    ] = None,
    candidate: Annotated[
        str | None,
        typer.Option(help="Replace the gate's candidate prompt: a registry ref (name@label) or file:PATH."),
    ] = None,
    resume: Annotated[str | None, typer.Option(help="Resume this run id (skips its finished cells).")] = None,
    cache: Annotated[bool, typer.Option(help="Reuse outputs of identical earlier cells.")] = True,
    max_cost: Annotated[float | None, typer.Option(help="Stop once the run has spent this many USD.")] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, max=512, help="Calls in flight.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML (for CI).")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write a Markdown summary (PR comment).")] = None,
    html: Annotated[Path | None, typer.Option(help="Write the self-contained HTML report.")] = None,
    mlflow: Annotated[
        bool, typer.Option(help="Also log the run to MLflow (needs the mlflow extra).")
    ] = False,
    mlflow_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: sqlite:///<data dir>/mlflow.db).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a suite through the gateway, score it, compare, and apply its gate."""
    from keel.evals import Runner, RunOptions, load_suite, prepare, with_candidate

    with migrated_store(config) as (engine, settings), reported_errors(display_url(settings.database_url)):
        suite = load_suite(suite_path)
        if candidate is not None:
            suite = with_candidate(suite, candidate)
        resolver = _prompt_resolver(engine, gateway, api_key)
        prepared = prepare(suite, resolver)
        options = RunOptions(
            base_url=gateway or "",
            api_key=api_key,
            resume=resume,
            use_cache=cache,
            max_cost_usd=max_cost,
            concurrency=concurrency,
            progress=not quiet,
        )
        if gateway is None:
            from keel.server import embedded_gateway

            # This process is the operator's own gateway: with no key given it runs
            # without access control (calls are still priced and logged).
            local = settings if api_key else _without_access(settings)
            with embedded_gateway(local) as (_, base_url):
                options.base_url = base_url
                results = asyncio.run(Runner(engine, options).run(prepared))
        else:
            results = asyncio.run(Runner(engine, options).run(prepared))
        _finish(results, settings, json_path, junit, markdown, html, mlflow, mlflow_uri)


def _prompt_resolver(engine: Engine, gateway: str | None, api_key: str | None) -> PromptResolver:
    if gateway is not None and api_key:
        from keel.client import PromptClient

        client = PromptClient(gateway, api_key)
        return client.get
    from keel.prompts import PromptRegistry

    return PromptRegistry(engine).get_version


def _without_access(settings: KeelSettings) -> KeelSettings:
    access = settings.access.model_copy(update={"enabled": False, "create_first_admin": False})
    return settings.model_copy(update={"access": access})


def _finish(
    results: object,
    settings: KeelSettings,
    json_path: Path | None,
    junit: Path | None,
    markdown: Path | None,
    html: Path | None,
    mlflow: bool,
    mlflow_uri: str | None,
) -> None:
    from keel.evals import RunResults, html_report, log_run_to_mlflow, render_terminal, write_reports

    assert isinstance(results, RunResults)
    console = table_console()
    render_terminal(results, console)
    for path in write_reports(
        results, json_path=json_path, junit_path=junit, markdown_path=markdown, html_path=html
    ):
        console.print(f"wrote {path}")
    if mlflow:
        uri = mlflow_uri or f"sqlite:///{settings.home / 'mlflow.db'}"
        mlflow_run = log_run_to_mlflow(results, tracking_uri=uri, html=html_report(results))
        console.print(f"logged to MLflow ({uri}): run {mlflow_run}")
    if results.status != "complete":
        console.print(f"[yellow]run {results.run_id} {results.status}: {results.note}[/yellow]")
        console.print(f"resume it with: keel eval run SUITE --resume {results.run_id}")
        raise typer.Exit(EXIT_STOPPED)
    if results.gate is not None and not results.gate.passed:
        raise typer.Exit(EXIT_GATE_FAILED)


@eval_app.command("list")
def list_runs(
    config: ConfigOption = None,
    suite: Annotated[str | None, typer.Option(help="Only runs of this suite.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Recent eval runs."""
    from keel.evals import RunStore, render_run_list

    with migrated_store(config) as (engine, _):
        rows = RunStore(engine).list_runs(suite=suite, limit=limit)
    if as_json:
        print_json(rows)
        return
    render_run_list(rows, table_console())


@eval_app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="A run id (see `keel eval list`).")],
    config: ConfigOption = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write a Markdown summary.")] = None,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report.")] = None,
) -> None:
    """One run: metrics with intervals, comparisons, gate; optionally its reports."""
    from keel.evals import read_run, render_terminal, write_reports

    with migrated_store(config) as (engine, _), reported_errors():
        results = read_run(engine, run_id)
        console = table_console()
        render_terminal(results, console)
        for path in write_reports(
            results, json_path=json_path, junit_path=junit, markdown_path=markdown, html_path=html
        ):
            console.print(f"wrote {path}")


@eval_app.command("compare")
def compare(
    baseline: Annotated[str, typer.Argument(help="The baseline run id.")],
    candidate: Annotated[str, typer.Argument(help="The candidate run id.")],
    config: ConfigOption = None,
    gate_suite: Annotated[
        Path | None, typer.Option("--gate", help="Apply this suite's gate rules to the comparison.")
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the comparison as JSON.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write a Markdown summary.")] = None,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report.")] = None,
) -> None:
    """Compare two stored runs case by case (paired tests); exit 3 if --gate fails."""
    from keel.evals import compare_stored_runs, load_suite, render_terminal, write_reports

    with migrated_store(config) as (engine, _), reported_errors():
        gate = load_suite(gate_suite).gate if gate_suite is not None else None
        results = compare_stored_runs(engine, baseline, candidate, gate)
        console = table_console()
        render_terminal(results, console)
        for path in write_reports(results, json_path=json_path, markdown_path=markdown, html_path=html):
            console.print(f"wrote {path}")
    if results.gate is not None and not results.gate.passed:
        raise typer.Exit(EXIT_GATE_FAILED)


@dataset_app.command("from-logs")
def dataset_from_logs(
    out: Annotated[Path, typer.Argument(help="The JSONL file to write.")],
    config: ConfigOption = None,
    route: Annotated[str | None, typer.Option(help="Only requests to this model route.")] = None,
    prompt: Annotated[
        str | None, typer.Option(help="Only requests that used this prompt (name or name#3).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO date/time, or 7d, 24h).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time.")] = None,
    sample: Annotated[int | None, typer.Option(min=1, help="Keep a reproducible sample of N inputs.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    redact: Annotated[bool, typer.Option(help="Redact PII and secrets with Keel's guard scanners.")] = True,
    feedback: Annotated[
        str | None, typer.Option(help="Only requests with feedback: any, positive, negative or corrected.")
    ] = None,
) -> None:
    """Sample logged requests into a dataset to label: de-duplicated, PII redacted."""
    from keel.evals import export_from_logs
    from keel.evals._dataset_writer import write_dataset
    from keel.spend import parse_moment

    with migrated_store(config) as (engine, _), reported_errors():
        now = datetime.now(UTC)
        result = export_from_logs(
            engine,
            route=route,
            prompt=prompt,
            since=parse_moment(since, now) if since else None,
            until=parse_moment(until, now, param="until") if until else None,
            sample=sample,
            seed=seed,
            redact=redact,
            feedback=feedback,
        )
        write_dataset(result.rows, out)
    skipped = ", ".join(f"{count} {reason}" for reason, count in result.skipped.items() if count) or "none"
    typer.echo(
        f"wrote {result.written} cases to {out} ({result.selected} requests matched; "
        f"{result.duplicates} duplicates, {result.sampled_out} sampled out, {result.redacted} redacted; "
        f"skipped: {skipped})"
    )
