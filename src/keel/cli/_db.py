"""``keel db upgrade``: bring the configured database's schema to the current revision."""

from __future__ import annotations

import typer

from keel.cli._common import ConfigOption, load_settings_for_cli, reported_errors
from keel.store import create_store_engine, current_revision, display_url, upgrade

db_app = typer.Typer(
    name="db",
    help="Manage Keel's database (schema migrations).",
    no_args_is_help=True,
)


@db_app.command("upgrade")
def upgrade_command(config: ConfigOption = None) -> None:
    """Apply the schema migrations to the configured database (safe to run again)."""
    with reported_errors():
        settings = load_settings_for_cli(config)
    url = display_url(settings.database_url)
    with reported_errors(url):
        engine = create_store_engine(settings.database_url)
        try:
            before = current_revision(engine)
            upgrade(engine)
            after = current_revision(engine)
        finally:
            engine.dispose()
    if before == after:
        typer.echo(f"{url}: already at revision {after}")
    else:
        typer.echo(f"{url}: upgraded from {before or 'an empty schema'} to revision {after}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app)
