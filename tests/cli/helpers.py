"""Running ``keel`` in-process and reaching the store it wrote, for the CLI tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from typer.testing import CliRunner

from keel.cli import app
from keel.store import create_store_engine


def keel(*args: str) -> tuple[int, str, str]:
    """The exit code, stdout and stderr of ``keel ARGS``."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def keel_json(*args: str) -> Any:
    """What ``keel ARGS --json`` prints, parsed; the command must succeed."""
    code, out, err = keel(*args, "--json")
    assert code == 0, err
    return json.loads(out)


@contextmanager
def sqlite_engine(database: Path) -> Iterator[Engine]:
    """An engine on the SQLite file ``database``, let go of on the way out."""
    engine = create_store_engine(f"sqlite:///{database}")
    try:
        yield engine
    finally:
        engine.dispose()
