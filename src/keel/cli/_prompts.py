"""``keel prompts``: versioned prompts from files, labels, rollback, rendering.

Commands act on the configured database directly, as an operator: the audit log names
the OS user (``cli:<user>``) and protected labels may be moved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypedDict

import typer
from rich.markup import escape
from rich.table import Table

from keel.access import AccessAdmin, Actor
from keel.cli._common import (
    ConfigOption,
    fail,
    find_team_id,
    load_settings_for_cli,
    print_json,
    reported_errors,
    require_existing_sqlite_file,
    table_console,
)
from keel.core import InvalidRequest
from keel.prompts import (
    PromptFile,
    PromptRegistry,
    PromptVersion,
    parse_prompt_ref,
    prompt_file_text,
    prompt_files,
    prompt_stats,
    read_prompt_file,
)
from keel.spend import format_usd, parse_moment
from keel.store import create_store_engine, current_revision, display_url

# The first revision that has the prompt tables.
_PROMPTS_REVISION = "0006"

prompts_app = typer.Typer(
    name="prompts",
    help="Versioned prompts: push files, move labels, roll back, render.",
    no_args_is_help=True,
)

TeamOption = Annotated[
    str | None, typer.Option("--team", help="The team that owns new prompts (default: organisation-wide).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


class _VersionContent(TypedDict):
    type: str
    template: object
    variables: object
    model_config: object
    commit_message: str


def _content_of(spec: PromptFile) -> _VersionContent:
    """What a prompt file sets on the version it creates."""
    return {
        "type": spec.type,
        "template": spec.template,
        "variables": spec.variables,
        "model_config": spec.model_config,
        "commit_message": spec.commit_message,
    }


@contextmanager
def _registry(config: Path | None) -> Iterator[PromptRegistry]:
    with reported_errors():
        settings = load_settings_for_cli(config)
    url = display_url(settings.database_url)
    require_existing_sqlite_file(settings.database_url)
    with reported_errors(url):
        engine = create_store_engine(settings.database_url)
        try:
            revision = current_revision(engine)
            if revision is None or revision < _PROMPTS_REVISION:
                fail(f"no prompt registry in {url}: run `keel db upgrade` first")
            from keel.server import label_gates

            yield PromptRegistry(engine, gates=label_gates(settings, engine))
        finally:
            engine.dispose()


@prompts_app.command("create")
def create(
    file: Annotated[Path, typer.Argument(help="A prompt file (YAML or JSON).", dir_okay=False)],
    team: TeamOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a prompt with its first version from FILE (an error if it exists)."""
    with reported_errors():
        spec = read_prompt_file(file)
    with _registry(config) as registry:
        version = registry.create(spec.name, **_content_of(spec), team_id=team, actor=Actor.cli().label)
    typer.echo(f"created {version.ref}")


@prompts_app.command("push")
def push(
    path: Annotated[Path, typer.Argument(help="A prompt file, or a folder of them.")],
    label: Annotated[
        str | None, typer.Option("--label", help="Also point this label at each pushed version.")
    ] = None,
    team: TeamOption = None,
    config: ConfigOption = None,
) -> None:
    """Sync prompt files into the registry: a new version only where the content changed."""
    with reported_errors():
        # Every file is read and checked before anything is written.
        specs = [read_prompt_file(p) for p in prompt_files(path)]
        if not specs:
            raise InvalidRequest(f"{path}: no prompt files (*.yaml, *.yml, *.json)")
        names = [s.name for s in specs]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            raise InvalidRequest(f"{path}: two files define prompt '{duplicate}'")
    actor = Actor.cli().label
    with _registry(config) as registry:
        for spec in specs:
            try:
                outcome = registry.push(spec.name, **_content_of(spec), team_id=team, actor=actor)
            except InvalidRequest as exc:
                raise InvalidRequest(f"{spec.path}: {exc.message}") from None
            what = "created" if outcome.created else "new version" if outcome.changed else "unchanged"
            line = f"{what}: {outcome.version.ref}"
            if label is not None:
                registry.set_label(spec.name, label, outcome.version.version, actor=actor, admin=True)
                line += f" (@{label})"
            typer.echo(line)


@prompts_app.command("pull")
def pull(
    folder: Annotated[Path, typer.Argument(help="Where to write one YAML file per prompt.", file_okay=False)],
    label: Annotated[str, typer.Option("--label", help="Which version of each prompt.")] = "latest",
    config: ConfigOption = None,
) -> None:
    """Write prompts out as files (prompts without LABEL are skipped)."""
    with _registry(config) as registry:
        written = 0
        for summary in registry.list_prompts():
            if label != "latest" and label not in summary.labels:
                continue
            version = registry.get_version(summary.name, label=label)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{summary.name}.yaml").write_text(prompt_file_text(version), encoding="utf-8")
            written += 1
    typer.echo(f"wrote {written} prompt file(s) to {folder}")


@prompts_app.command("list")
def list_(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Every prompt, its latest version and its labels."""
    with _registry(config) as registry:
        summaries = registry.list_prompts()
    if as_json:
        print_json([s.to_json() for s in summaries])
        return
    if not summaries:
        typer.echo("no prompts", err=True)
        return
    table = Table(box=None, header_style="bold")
    for column in ("name", "type", "latest", "labels", "team"):
        table.add_column(column)
    for s in summaries:
        labels = ", ".join(f"{n}=#{pointer.version}" for n, pointer in sorted(s.labels.items()))
        table.add_row(escape(s.name), s.type, f"#{s.latest_version}", escape(labels) or "-", s.team_id or "-")
    table_console().print(table)


@prompts_app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME (latest), NAME@label or NAME#version.")],
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """A version: template, variables, model config (and the prompt's labels and versions)."""
    with reported_errors():
        parsed = parse_prompt_ref(ref)
    with _registry(config) as registry:
        summary = registry.get_prompt(parsed.name)
        label = parsed.label if parsed.label is not None or parsed.version is not None else "latest"
        version = registry.get_version(parsed.name, label=label, version=parsed.version)
        versions = registry.list_versions(parsed.name)
    if as_json:
        print_json({**version.to_json(), "labels": summary.to_json()["labels"]})
        return
    labels = ", ".join(
        f"{n}=#{pointer.version}{' (protected)' if pointer.protected else ''}"
        for n, pointer in summary.labels.items()
    )
    typer.echo(
        f"{version.ref}  ({version.prompt_type})  by {version.author}  {version.created_at:%Y-%m-%d %H:%M}"
    )
    if version.commit_message:
        typer.echo(f"  {version.commit_message}")
    typer.echo(f"labels: {labels or '-'}; versions: 1..{versions[-1].version}")
    typer.echo("")
    typer.echo(prompt_file_text(version).rstrip())


@prompts_app.command("diff")
def diff(
    name: Annotated[str, typer.Argument(help="The prompt.")],
    a: Annotated[int, typer.Argument(help="From version.")],
    b: Annotated[int, typer.Argument(help="To version.")],
    config: ConfigOption = None,
) -> None:
    """A unified diff of template, variables and model config between two versions."""
    with _registry(config) as registry:
        text = registry.diff(name, a, b)
    typer.echo(text or f"{name}#{a} and {name}#{b} have the same content")


@prompts_app.command("label")
def label(
    name: Annotated[str, typer.Argument(help="The prompt.")],
    version: Annotated[int, typer.Argument(help="The version the label points to.")],
    label: Annotated[str, typer.Argument(help="The label (production, staging, ...).")],
    protect: Annotated[
        bool | None, typer.Option("--protect/--unprotect", help="Make the label protected or not.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Point LABEL of prompt NAME at VERSION (a deployment when it is production)."""
    with _registry(config) as registry:
        moved = registry.set_label(
            name, label, version, actor=Actor.cli().label, admin=True, protected=protect
        )
    typer.echo(f"{name}@{moved.label} -> #{moved.version}{' (protected)' if moved.protected else ''}")


@prompts_app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="The prompt.")],
    label: Annotated[str, typer.Argument(help="The label to move back.")],
    config: ConfigOption = None,
) -> None:
    """Move LABEL back to the version it pointed to before its last move."""
    with _registry(config) as registry:
        moved = registry.rollback(name, label, actor=Actor.cli().label, admin=True)
    typer.echo(f"{name}@{moved.label} -> #{moved.version}")


@prompts_app.command("history")
def history(
    name: Annotated[str, typer.Argument(help="The prompt.")],
    label: Annotated[str | None, typer.Argument(help="Only this label.")] = None,
    config: ConfigOption = None,
) -> None:
    """Every label move of a prompt, oldest first."""
    with _registry(config) as registry:
        moves = registry.label_history(name, label)
    for m in moves:
        before = f"#{m.from_version}" if m.from_version is not None else "-"
        typer.echo(f"{m.at:%Y-%m-%d %H:%M:%S}  {m.label}: {before} -> #{m.to_version}  {m.action}  {m.actor}")


@prompts_app.command("render")
def render(
    ref: Annotated[str, typer.Argument(help="NAME (production), NAME@label or NAME#version.")],
    var: Annotated[
        list[str] | None, typer.Option("--var", help="NAME=VALUE (JSON for non-string variables).")
    ] = None,
    vars_file: Annotated[
        Path | None, typer.Option("--vars", help="A JSON file with an object of variables.", dir_okay=False)
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Render a version with variables: what the gateway would send."""
    with reported_errors():
        parsed = parse_prompt_ref(ref)
        given: dict[str, Any] = {}
        if vars_file is not None:
            loaded = json.loads(vars_file.read_text(encoding="utf-8"))
            if not isinstance(loaded, dict):
                raise InvalidRequest(f"{vars_file}: must hold a JSON object")
            given.update(loaded)
    with _registry(config) as registry:
        version = registry.get_version(parsed.name, label=parsed.label, version=parsed.version)
    with reported_errors():
        given.update(_parse_vars(version, var or []))
        rendered = version.render(given)
    if as_json:
        print_json({"version": version.version, "text": rendered.text, "messages": rendered.chat_messages()})
    elif rendered.text is not None:
        typer.echo(rendered.text)
    else:
        for message in rendered.chat_messages():
            typer.echo(f"[{message['role']}]\n{message['content']}\n")


def _parse_vars(version: PromptVersion, pairs: list[str]) -> dict[str, Any]:
    """``NAME=VALUE``: taken as text for string variables, as JSON for the others."""
    types = {v.name: v.type for v in version.variables}
    values: dict[str, Any] = {}
    for pair in pairs:
        name, eq, raw = pair.partition("=")
        if not eq or not name:
            raise InvalidRequest(f"--var takes NAME=VALUE, got {pair!r}")
        if types.get(name, "string") == "string":
            values[name] = raw
            continue
        try:
            values[name] = json.loads(raw)
        except json.JSONDecodeError:
            raise InvalidRequest(f"--var {name}: a {types[name]} is given as JSON, got {raw!r}") from None
    return values


@prompts_app.command("stats")
def stats(
    name: Annotated[str, typer.Argument(help="The prompt.")],
    since: Annotated[
        str | None, typer.Option("--since", help="Only requests since: 7d, 12h, 30m or an ISO time.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only requests before: a duration ago or an ISO time.")
    ] = None,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's requests (name/id).")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Per version: requests, error rate, latency p50/p95, tokens and cost (request log)."""
    with reported_errors():
        now = datetime.now(UTC)
        since_at = parse_moment(since, now, param="--since") if since is not None else None
        until_at = parse_moment(until, now, param="--until") if until is not None else None
    with _registry(config) as registry:
        team_id = find_team_id(AccessAdmin(registry.engine), team)
        rows = prompt_stats(registry.engine, name, since=since_at, until=until_at, team_id=team_id)
    if as_json:
        print_json([{**r.to_json(), "cost_usd": format_usd(r.cost_nanos)} for r in rows])
        return
    table = Table(box=None, header_style="bold")
    table.add_column("version")
    table.add_column("labels")
    for column in ("requests", "errors", "p50 ms", "p95 ms", "input", "output", "cost $"):
        table.add_column(column, justify="right")
    table.add_column("last request (UTC)")
    for r in rows:
        table.add_row(
            f"#{r.version}",
            escape(", ".join(r.labels)) or "-",
            str(r.requests),
            f"{r.errors} ({r.error_rate:.1%})" if r.error_rate is not None else "-",
            _ms(r.latency_p50_ms),
            _ms(r.latency_p95_ms),
            str(r.input_tokens),
            str(r.output_tokens),
            format_usd(r.cost_nanos),
            f"{r.last_request_at:%Y-%m-%d %H:%M:%S}" if r.last_request_at is not None else "-",
        )
    table_console().print(table)


def _ms(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(prompts_app)
