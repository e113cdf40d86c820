"""``keel config check`` and ``keel config show``: validate and print the configuration."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from keel.cli._common import reported_errors
from keel.core import KeelSettings, load_settings

MASK = "****"
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*(@)")

config_app = typer.Typer(
    name="config",
    help="Check and show the configuration (keel.yaml).",
    no_args_is_help=True,
)

PathArgument = Annotated[
    Path | None,
    typer.Argument(
        help="Config file. Default: $KEEL_CONFIG, else ./keel.yaml, else the embedded defaults.",
        dir_okay=False,
        show_default=False,
    ),
]


@config_app.command("check")
def check(path: PathArgument = None) -> None:
    """Validate the configuration and list every problem with its location."""
    with reported_errors():
        settings = load_settings(path, checks=[build_guard_policies, build_alert_rules])
    shown = settings.source or "embedded defaults"
    typer.echo(f"OK: {shown} ({len(settings.providers)} providers, {len(settings.models)} models)")


@config_app.command("show")
def show(path: PathArgument = None) -> None:
    """Print the effective configuration as YAML, with secrets masked."""
    with reported_errors():
        settings = load_settings(path)
    typer.echo(f"# source: {settings.source or 'embedded defaults'}")
    typer.echo(yaml.safe_dump(masked(settings), sort_keys=False, allow_unicode=True), nl=False)


def build_guard_policies(settings: KeelSettings) -> None:
    """Build every guard policy, as the server will: an unknown scanner, a wrong setting
    or an invalid regex is a ``ConfigError`` located in ``guards.policies``."""
    # Imported here: the scanners' modules are not needed for any other command.
    from keel.guards import build_policies

    build_policies(settings.guards)


def build_alert_rules(settings: KeelSettings) -> None:
    """Check every alert rule and channel as the server will build them."""
    import keel.drift_alerts  # noqa: F401 (registers the drift kind)
    from keel.alerts import build_rules

    build_rules(settings)


# Channel settings that carry credentials (a Slack webhook URL is one).
_CHANNEL_SECRETS = ("url", "password", "username")


def masked(settings: KeelSettings) -> dict[str, Any]:
    """The settings as plain data with API keys, header values, URL passwords, alert
    channel credentials and the console's signing secret hidden."""
    data = settings.model_dump(mode="json", exclude={"source"})
    for provider in data["providers"].values():
        if provider.get("api_key"):
            provider["api_key"] = MASK
        provider["headers"] = dict.fromkeys(provider.get("headers", {}), MASK)
    if data["store"].get("url"):
        data["store"]["url"] = _URL_PASSWORD.sub(rf"\g<1>{MASK}\g<2>", data["store"]["url"])
    for channel in data["alerts"]["channels"].values():
        for key in _CHANNEL_SECRETS:
            if channel.get(key):
                channel[key] = MASK
        if isinstance(channel.get("headers"), dict):
            channel["headers"] = dict.fromkeys(channel["headers"], MASK)
    if data["console"].get("secret"):
        data["console"]["secret"] = MASK
    if data["telemetry"].get("otlp_headers"):
        data["telemetry"]["otlp_headers"] = dict.fromkeys(data["telemetry"]["otlp_headers"], MASK)
    return data


def register(app: typer.Typer) -> None:
    app.add_typer(config_app)
