"""What the CLI commands share: the ``--config`` option, loading settings, and turning
failures into one line on stderr and exit status 1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from sqlalchemy.exc import SQLAlchemyError

from keel.core import ConfigError, KeelError, KeelSettings

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
