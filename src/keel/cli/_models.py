"""``keel models``: the model registry (MLflow's): list models and versions, show a
version's lineage, register a model directory, move aliases (``production``,
``candidate`` ...), print a version's local directory.

The gate, promotion and canary commands register on ``models_app`` too.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._common import (
    ConfigOption,
    fail,
    load_settings_for_cli,
    print_json,
    reported_errors,
    table_console,
)

if TYPE_CHECKING:
    from keel.training import ModelRef

models_app = typer.Typer(
    name="models",
    help="The model registry (MLflow): versions, lineage, aliases.",
    no_args_is_help=True,
)

MlflowUriOption = Annotated[
    str | None,
    typer.Option(
        envvar="MLFLOW_TRACKING_URI",
        help="MLflow tracking URI (env MLFLOW_TRACKING_URI). Default: sqlite:///<data dir>/mlflow.db",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def register(app: typer.Typer) -> None:
    app.add_typer(models_app)


def tracking_uri_for_cli(config: Path | None, mlflow_uri: str | None) -> str:
    """The MLflow store a ``keel models`` command works on."""
    if mlflow_uri:
        return mlflow_uri
    from keel.training import default_tracking_uri

    return default_tracking_uri(load_settings_for_cli(config).home)


def model_ref_json(ref: ModelRef) -> dict[str, Any]:
    return {
        "name": ref.name,
        "version": ref.version,
        "aliases": list(ref.aliases),
        "path": str(ref.path) if ref.path is not None else None,
        "source": ref.source,
        "run_id": ref.run_id,
        "tags": dict(ref.tags),
        "created_at": _when(ref.created_at),
        "description": ref.description,
    }


@models_app.command("list")
def list_command(
    config: ConfigOption = None, mlflow_uri: MlflowUriOption = None, as_json: JsonFlag = False
) -> None:
    """Registered models, their newest version and aliases."""
    from keel.training import list_models

    with reported_errors():
        uri = tracking_uri_for_cli(config, mlflow_uri)
        models = list_models(tracking_uri=uri)
    if as_json:
        print_json(
            [
                {
                    "name": m.name,
                    "latest_version": m.latest_version,
                    "aliases": dict(m.aliases),
                    "description": m.description,
                    "updated_at": _when(m.updated_at),
                }
                for m in models
            ]
        )
        return
    if not models:
        typer.echo(f"no registered models in {uri}")
        return
    from rich.table import Table

    table = Table("name", "latest", "aliases", "updated")
    for m in models:
        aliases = ", ".join(f"{alias}→v{version}" for alias, version in sorted(m.aliases.items()))
        table.add_row(
            m.name, f"v{m.latest_version}" if m.latest_version else "-", aliases, _when(m.updated_at)
        )
    table_console().print(table)


@models_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    ref: Annotated[
        str | None, typer.Argument(help="A version (3, v3), an alias (production) or latest. Default: all.")
    ] = None,
    config: ConfigOption = None,
    mlflow_uri: MlflowUriOption = None,
    as_json: JsonFlag = False,
) -> None:
    """A model's versions, or one version with its lineage (base model, dataset, run)."""
    from keel.training import list_versions, resolve_model

    with reported_errors():
        uri = tracking_uri_for_cli(config, mlflow_uri)
        versions = (
            [resolve_model(name, ref, tracking_uri=uri)]
            if ref is not None
            else list_versions(name, tracking_uri=uri)
        )
    if as_json:
        print_json(model_ref_json(versions[0]) if ref is not None else [model_ref_json(v) for v in versions])
        return
    if ref is None:
        from rich.table import Table

        table = Table("version", "aliases", "kind", "dataset", "created", "path")
        for v in versions:
            table.add_row(
                f"v{v.version}",
                ", ".join(v.aliases),
                v.tags.get("keel.kind", ""),
                v.tags.get("keel.dataset_hash", "")[:19],
                _when(v.created_at),
                str(v.path) if v.path is not None else v.source,
            )
        table_console().print(table)
        return
    v = versions[0]
    typer.echo(f"{v.name} version {v.version}" + (f" [{', '.join(v.aliases)}]" if v.aliases else ""))
    typer.echo(f"  created: {_when(v.created_at)}")
    typer.echo(f"  source: {v.source}")
    if v.run_id:
        typer.echo(f"  run: {v.run_id}")
    if v.description:
        typer.echo(f"  description: {v.description}")
    for key, value in sorted(v.tags.items()):
        typer.echo(f"  {key}: {value}")


@models_app.command("register")
def register_command(
    name: Annotated[str, typer.Argument(help="Registered model name (created when new).")],
    path: Annotated[str, typer.Argument(help="A Hugging Face model directory, or demo.")],
    alias: Annotated[list[str] | None, typer.Option(help="Point this alias at the new version.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag KEY=VALUE (repeatable).")] = None,
    description: Annotated[str | None, typer.Option(help="Version description.")] = None,
    config: ConfigOption = None,
    mlflow_uri: MlflowUriOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Register an existing model directory as a new version (e.g. the base model as
    the first production version)."""
    from keel.training import TAG_BASE_MODEL, TAG_KIND, register_model, resolve_base_model

    tags = {}
    for item in tag or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--tag {item!r}: expected KEY=VALUE")
        tags[key] = value
    with reported_errors():
        settings = load_settings_for_cli(config)
        uri = tracking_uri_for_cli(config, mlflow_uri)
        directory = resolve_base_model(path, settings.home)
        tags = {TAG_KIND: "base", TAG_BASE_MODEL: str(directory)} | tags
        ref = register_model(
            directory, name, tracking_uri=uri, tags=tags, aliases=tuple(alias or ()), description=description
        )
    if as_json:
        print_json(model_ref_json(ref))
    else:
        aliases = f" [{', '.join(ref.aliases)}]" if ref.aliases else ""
        typer.echo(f"registered {ref.name} version {ref.version}{aliases}: {ref.path}")


@models_app.command("alias")
def alias_command(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    alias: Annotated[str, typer.Argument(help="The alias, e.g. production or candidate.")],
    version: Annotated[str | None, typer.Argument(help="The version to point it at (3, v3, latest).")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias instead.")] = False,
    config: ConfigOption = None,
    mlflow_uri: MlflowUriOption = None,
) -> None:
    """Point an alias at a version, or remove it with --delete."""
    from keel.training import delete_alias, resolve_model, set_alias

    if delete == (version is not None):
        fail("give a VERSION to point the alias at, or --delete (not both)")
    with reported_errors():
        uri = tracking_uri_for_cli(config, mlflow_uri)
        if delete:
            delete_alias(name, alias, tracking_uri=uri)
            typer.echo(f"removed alias {alias} of {name}")
            return
        assert version is not None
        set_alias(name, alias, version, tracking_uri=uri)
        ref = resolve_model(name, alias, tracking_uri=uri)
    typer.echo(f"{name}@{alias} → version {ref.version}")


@models_app.command("path")
def path_command(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    ref: Annotated[str, typer.Argument(help="A version (3, v3), an alias or latest.")] = "latest",
    config: ConfigOption = None,
    mlflow_uri: MlflowUriOption = None,
) -> None:
    """The local directory of a version (downloaded first when it lives in MLflow)."""
    from keel.training import model_path, resolve_model

    with reported_errors():
        uri = tracking_uri_for_cli(config, mlflow_uri)
        found = resolve_model(name, ref, tracking_uri=uri)
        typer.echo(str(model_path(found, tracking_uri=uri)))


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else ""
