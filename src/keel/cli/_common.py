"""What the CLI commands share: the ``--config`` and ``--json`` options, loading settings,
opening the configured store, printing JSON and tables, and turning failures into one
line on stderr and exit status 1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from keel.access import AccessAdmin, Actor
from keel.core import ConfigError, KeelError, KeelSettings
from keel.store import create_store_engine, display_url, upgrade

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file. Default: $KEEL_CONFIG, else ./keel.yaml, else the embedded defaults.",
        dir_okay=False,
        show_default=False,
    ),
]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def load_settings_for_cli(config: Path | None) -> KeelSettings:
    """The effective settings: ``config`` (or the default file) with ``KEEL_*`` overrides."""
    # Imported here so that `keel --help` does not pay for the YAML loader.
    from keel.core._config_loader import load_settings

    return load_settings(config)


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def reported_errors(database: str | None = None) -> Iterator[None]:
    """Turn Keel, database and file errors raised inside into ``error: ...`` and exit 1.

    ``database`` (a URL with its password hidden) is named in database errors.
    """
    try:
        yield
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1) from None
    except KeelError as exc:
        fail(exc.message)
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        where = f" {database}" if database else ""
        fail(f"database{where}: {_first_line(cause)}")
    except OSError as exc:
        fail(str(exc))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def migrated_store(config: Path | None) -> Iterator[tuple[Engine, KeelSettings]]:
    """The configured store, upgraded to the latest schema, and the settings; errors inside
    are reported (naming the database) and the engine is disposed of on the way out."""
    with reported_errors():
        settings = load_settings_for_cli(config)
    with reported_errors(display_url(settings.database_url)):
        engine = create_store_engine(settings.database_url)
        try:
            upgrade(engine)
            yield engine, settings
        finally:
            engine.dispose()


def find_team_id(access: AccessAdmin, team: str | None) -> str | None:
    """The id of ``team`` (a name or id) as the operator sees it; None for no ``team``."""
    return access.find_team(Actor.cli(), team).id if team is not None else None


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


def table_console() -> Console:
    # Piped output gets 80 columns from Rich: give the tables room instead of eliding.
    console = Console()
    return console if console.is_terminal else Console(width=200)


def require_existing_sqlite_file(database_url: str) -> None:
    """Fail unless a SQLite database file exists: a command that only reads must not
    leave an empty database file behind."""
    url = make_url(database_url)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return
    if not Path(database).expanduser().exists():
        fail(f"no database at {database}: run `keel db upgrade` first")
