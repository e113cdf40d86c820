"""Composition root: settings → store, providers, gateway → one ASGI app, served by uvicorn.

Start-up order matters: migrations run before the app accepts traffic; the demo model
(when a route uses it) is built before the port opens, with a progress bar, so no
request waits minutes for it. Shut-down (SIGTERM/SIGINT) is uvicorn's graceful stop:
stop accepting, let in-flight calls finish, then the lifespan exit drains the request
log queue and closes upstream connection pools.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn
from rich.console import Console
from sqlalchemy import Engine
from starlette.applications import Starlette

from keel import __version__
from keel.core import DEMO_CHAT_MODEL, KeelSettings
from keel.gateway import Gateway, GatewayApp, create_app
from keel.providers import Provider, build_provider, ensure_demo_model
from keel.store import RequestLogWriter, create_store_engine, display_url, ping, upgrade
from keel.telemetry import GatewayMetrics

log = logging.getLogger("keel.server")


@dataclass
class KeelApp:
    """Everything one Keel process runs, for the CLI and for tests to hold on to."""

    settings: KeelSettings
    engine: Engine
    writer: RequestLogWriter
    gateway: Gateway
    asgi: GatewayApp


def prepare_local_models(settings: KeelSettings, progress: bool = True) -> None:
    """Build the demo model into the data directory if a route serves it."""
    for route in settings.models.values():
        for dep in route.deployments:
            provider = settings.providers.get(dep.provider)
            if provider is not None and provider.type == "local" and dep.model == DEMO_CHAT_MODEL:
                ensure_demo_model(settings.home, progress=progress)
                return


def build_app(settings: KeelSettings) -> KeelApp:
    engine = create_store_engine(settings.database_url)
    upgrade(engine)
    writer = RequestLogWriter(engine, settings.request_log)
    metrics = GatewayMetrics()
    metrics.watch_log_writer(writer.depth, lambda: writer.written)
    providers: dict[str, Provider] = {
        name: build_provider(name, provider_settings, settings.home)
        for name, provider_settings in settings.providers.items()
    }

    async def ready() -> bool:
        return await asyncio.to_thread(ping, engine)

    gateway = Gateway(settings, providers, writer, metrics, ready)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await writer.start()
        try:
            yield
        finally:
            await writer.drain_and_stop(timeout=settings.server.graceful_timeout)
            for provider in providers.values():
                await provider.aclose()
            log.info("request log drained: %d records written", writer.written)

    return KeelApp(settings, engine, writer, gateway, create_app(gateway, lifespan))


def uvicorn_config(app: KeelApp, *, log_level: str = "info") -> uvicorn.Config:
    server = app.settings.server
    return uvicorn.Config(
        app.asgi,
        host=server.host,
        port=server.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        # Keel uses no client address yet; parsing X-Forwarded-* costs CPU per request.
        proxy_headers=False,
        log_level=log_level,
        timeout_graceful_shutdown=int(server.graceful_timeout) or None,
        # A keep-alive longer than typical client pools avoids reconnect churn.
        timeout_keep_alive=30,
        backlog=4096,
    )


def serve(settings: KeelSettings, *, log_level: str = "info") -> None:
    """Run Keel in the foreground until SIGTERM/SIGINT."""
    prepare_local_models(settings)
    app = build_app(settings)
    server = settings.server
    Console(stderr=True).print(
        f"[bold]Keel[/bold] {__version__}: OpenAI-compatible API at "
        f"[cyan]http://{server.host}:{server.port}/v1[/cyan] — models: {', '.join(settings.models) or 'none'}"
        f" — data in {settings.home} ({display_url(app.engine)})"
    )
    try:
        uvicorn.Server(uvicorn_config(app, log_level=log_level)).run()
    finally:
        app.engine.dispose()
