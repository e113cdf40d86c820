"""``keel data``: datasets from feedback (export, import) and annotation queues."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from keel.cli._common import (
    ConfigOption,
    JsonOption,
    find_team_id,
    migrated_store,
    print_json,
    reported_errors,
    table_console,
)
from keel.cli._logs import parse_since
from keel.store import display_url

data_app = typer.Typer(
    name="data",
    help="Datasets from feedback (SFT, preference) and annotation queues.",
    no_args_is_help=True,
)
queue_app = typer.Typer(
    name="queue", help="Annotation queues: requests for reviewers to score.", no_args_is_help=True
)
data_app.add_typer(queue_app)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app)


OutOption = Annotated[
    Path, typer.Option("--out", help="The dataset directory to create (must not exist, or be empty).")
]
SeedOption = Annotated[int, typer.Option(help="Seed of the train/eval split.")]
EvalOption = Annotated[
    float, typer.Option("--eval-fraction", min=0.0, max=0.99, help="Share of rows for eval.")
]


@data_app.command("export")
def export(
    out: OutOption,
    kind: Annotated[
        str, typer.Option(help="sft (prompt, ideal answer) or preference (prompt, chosen, rejected).")
    ],
    fmt: Annotated[str, typer.Option("--format", help="trl (conversational) or hh (HH-RLHF text).")] = "trl",
    since: Annotated[
        str | None, typer.Option(help="Feedback given since: 30m, 1h, 7d or an ISO time.")
    ] = None,
    route: Annotated[str | None, typer.Option(help="Only requests served by this route.")] = None,
    prompt: Annotated[
        str | None, typer.Option(help="Only requests of this prompt (name or name#version).")
    ] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's requests (name or id).")] = None,
    min_score: Annotated[
        float,
        typer.Option(help="SFT: least average score (0..1; thumbs up 1, rating 4 = 0.75) of an answer."),
    ] = 0.75,
    eval_fraction: EvalOption = 0.1,
    seed: SeedOption = 0,
    redact: Annotated[bool, typer.Option(help="Replace personal data and secrets with placeholders.")] = True,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build a versioned dataset from feedback joined with the logged requests."""
    from keel.access import AccessAdmin
    from keel.pipelines import export_dataset

    with migrated_store(config) as (engine, settings), reported_errors(display_url(settings.database_url)):
        team_id = find_team_id(AccessAdmin(engine), team)
        result = export_dataset(
            engine,
            out,
            kind=kind,  # type: ignore[arg-type]  # checked by export_dataset
            fmt=fmt,  # type: ignore[arg-type]
            since=parse_since(since, datetime.now(UTC)) if since else None,
            route=route,
            prompt=prompt,
            team_id=team_id,
            min_score=min_score,
            eval_fraction=eval_fraction,
            seed=seed,
            redact=redact,
        )
        _report(result.path, result.manifest, as_json)


@data_app.command("import")
def import_(
    out: OutOption,
    hh: Annotated[Path, typer.Option("--hh", help="HH-RLHF-style JSONL: {chosen, rejected} a line.")],
    eval_fraction: EvalOption = 0.1,
    seed: SeedOption = 0,
    redact: Annotated[bool, typer.Option(help="Replace personal data and secrets with placeholders.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Import HH-RLHF-style preference pairs as a dataset (TRL conversational format)."""
    from keel.pipelines import import_hh

    with reported_errors():
        result = import_hh(hh, out, eval_fraction=eval_fraction, seed=seed, redact=redact)
        _report(result.path, result.manifest, as_json)


def _report(path: Path, manifest: dict[str, object], as_json: bool) -> None:
    if as_json:
        print_json({"path": str(path), **manifest})
        return
    counts = manifest["counts"]
    assert isinstance(counts, dict)
    typer.echo(f"wrote {manifest['kind']} dataset {manifest['id']} to {path}")
    typer.echo(f"  train {counts['train']}, eval {counts['eval']}; sources {manifest['sources']}")
    typer.echo(f"  duplicates dropped {manifest['duplicates']}, rows redacted {manifest['redacted_rows']}")
    skipped = manifest.get("skipped")
    if skipped:
        typer.echo(f"  skipped {skipped}")


@queue_app.command("create")
def queue_create(
    name: Annotated[str, typer.Argument(help="The queue's name.")],
    size: Annotated[int, typer.Option(min=1, help="How many requests to sample.")],
    route: Annotated[str | None, typer.Option(help="Only requests served by this route.")] = None,
    since: Annotated[str | None, typer.Option(help="Requests since: 30m, 1h, 7d or an ISO time.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's requests (name or id).")] = None,
    without_feedback: Annotated[bool, typer.Option(help="Only requests that have no feedback yet.")] = False,
    reviewers_per_item: Annotated[
        int, typer.Option(min=1, help="Reviewers per request (2+ for agreement).")
    ] = 1,
    instructions: Annotated[str | None, typer.Option(help="What reviewers should look for.")] = None,
    seed: SeedOption = 0,
    config: ConfigOption = None,
) -> None:
    """Sample logged chat requests into a new annotation queue."""
    from keel.access import AccessAdmin
    from keel.feedback import create_queue

    with migrated_store(config) as (engine, settings), reported_errors(display_url(settings.database_url)):
        queue = create_queue(
            engine,
            name,
            size=size,
            route=route,
            since=parse_since(since, datetime.now(UTC)) if since else None,
            team_id=find_team_id(AccessAdmin(engine), team),
            without_feedback=without_feedback,
            reviewers_per_item=reviewers_per_item,
            instructions=instructions,
            seed=seed,
        )
        typer.echo(f"created queue {queue.name} ({queue.id}) with {queue.items} requests")


@queue_app.command("assign")
def queue_assign(
    name: Annotated[str, typer.Argument(help="The queue's name or id.")],
    reviewers: Annotated[list[str], typer.Argument(help="Reviewers to share the items between.")],
    config: ConfigOption = None,
) -> None:
    """Assign the queue's requests to reviewers, evenly."""
    from keel.feedback import assign

    with migrated_store(config) as (engine, settings), reported_errors(display_url(settings.database_url)):
        made = assign(engine, name, reviewers)
        typer.echo(f"made {made} assignments in {name}")


@queue_app.command("review")
def queue_review(
    name: Annotated[str, typer.Argument(help="The queue's name or id.")],
    reviewer: Annotated[str, typer.Option(help="Who reviews.")],
    request_id: Annotated[str, typer.Option("--request", help="The request reviewed.")],
    thumbs: Annotated[str | None, typer.Option(help="up or down.")] = None,
    rating: Annotated[int | None, typer.Option(min=1, max=5, help="1 to 5.")] = None,
    correction: Annotated[str | None, typer.Option(help="The answer that should have been given.")] = None,
    comment: Annotated[str | None, typer.Option(help="A note.")] = None,
    config: ConfigOption = None,
) -> None:
    """Record a review of one assigned request (again: replaces the earlier review)."""
    from keel.feedback import FeedbackInput, submit_review

    body: dict[str, object] = {"request_id": request_id}
    score = {k: v for k, v in (("thumbs", thumbs), ("rating", rating)) if v is not None}
    if score:
        body["score"] = score
    if correction is not None:
        body["correction"] = correction
    if comment is not None:
        body["comment"] = comment
    with migrated_store(config) as (engine, settings), reported_errors(display_url(settings.database_url)):
        stored = submit_review(engine, name, reviewer, FeedbackInput.from_json(body))
        typer.echo(f"recorded review {stored.id}")


@queue_app.command("status")
def queue_status(
    name: Annotated[str, typer.Argument(help="The queue's name or id.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Progress per reviewer and agreement between reviewers per score."""
    from rich.table import Table

    from keel.feedback import queue_status as status_of

    with migrated_store(config) as (engine, settings), reported_errors(display_url(settings.database_url)):
        status = status_of(engine, name)
    if as_json:
        print_json(status.to_json())
        return
    console = table_console()
    console.print(
        f"queue {status.queue.name}: {status.queue.items} requests, {status.done}/{status.assigned} "
        f"assignments done, {status.unassigned_items} requests unassigned"
    )
    reviewers = Table("reviewer", "assigned", "done")
    for reviewer, counts in status.reviewers.items():
        reviewers.add_row(reviewer, str(counts["assigned"]), str(counts["done"]))
    console.print(reviewers)
    if status.agreement:
        table = Table("score", "level", "items", "reviewers", "Krippendorff α", "Cohen κ")
        for a in status.agreement:
            table.add_row(
                a.score, a.level, str(a.items), str(a.reviewers), _number(a.alpha), _number(a.kappa)
            )
        console.print(table)


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
