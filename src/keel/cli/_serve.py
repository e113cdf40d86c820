"""``keel serve``: run the gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keel.cli._common import load_settings_for_cli


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Path to keel.yaml.")] = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 4000).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the OpenAI-compatible gateway (embedded defaults when there is no config)."""
    from keel.server import serve as run

    settings = load_settings_for_cli(config)
    server = settings.server
    if host is not None or port is not None:
        server = server.model_copy(
            update={k: v for k, v in (("host", host), ("port", port)) if v is not None}
        )
        settings = settings.model_copy(update={"server": server})
    run(settings, log_level=log_level)
