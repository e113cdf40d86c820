"""The ``keel`` command line. Each command group lives in its own module and
registers itself on ``app``; ``main`` turns Keel errors into one line and exit 1."""

from __future__ import annotations

import sys

import typer

from keel.core import ConfigError, KeelError

app = typer.Typer(
    name="keel",
    help="Keel: OpenAI-compatible gateway and LLMOps platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Registration order is help order.
from keel.cli import (  # noqa: E402
    _access,
    _alerts,
    _config,
    _data,
    _db,
    _demo,
    _eval,
    _guard,
    _logs,
    _models,
    _models_release,
    _monitor,
    _prompts,
    _report,
    _serve,
    _spend,
    _train,
)

for _module in (
    _serve,
    _config,
    _db,
    _logs,
    _access,
    _spend,
    _prompts,
    _guard,
    _eval,
    _report,
    _alerts,
    _data,
    _monitor,
    _train,
    _models,
    _models_release,
    _demo,
):
    _module.register(app)


def main() -> None:
    try:
        app(standalone_mode=True)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        sys.exit(1)
    except KeelError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(1)
