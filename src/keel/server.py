"""Composition root: settings → store, providers, gateway → one ASGI app, served by uvicorn.

Start-up order matters: migrations run before the app accepts traffic; the demo model
(when a route uses it) is built before the port opens, with a progress bar, so no
request waits minutes for it; the spend ledger recovers dead instances' reservations
before the first request. Shut-down (SIGTERM/SIGINT) is uvicorn's graceful stop: stop
accepting, let in-flight calls finish, then the lifespan exit drains the request log
queue and the spend ledger, and closes upstream connection pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn
from rich.console import Console
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.types import ASGIApp

import keel.drift_alerts  # noqa: F401 (registers the drift alert kind)
from keel import __version__
from keel.access import KeyRing, ensure_first_admin
from keel.admin import create_admin_app
from keel.alerts import AlertEngine, build_rules
from keel.cache import ResponseCache, build_cache
from keel.console import create_console_app
from keel.core import DEMO_CHAT_MODEL, KeelSettings
from keel.feedback import create_feedback_api
from keel.gateway import Gateway, GatewayApp, GatewayServices, GuardPolicies, SpendGate, create_app
from keel.guards import build_policies
from keel.monitor import DriftMonitor, create_predictions_api
from keel.prompts import LabelGate, PromptCatalog, PromptRegistry
from keel.providers import Provider, build_provider, ensure_demo_model
from keel.release import ReleaseWatcher
from keel.spend import CHANGE_TOPIC as SPEND_TOPIC
from keel.spend import Counters, SpendLedger, create_counters, list_budgets
from keel.store import RequestLogWriter, create_store_engine, display_url, ping, read_changes, upgrade
from keel.telemetry import BudgetReading, BudgetSource, GatewayMetrics

log = logging.getLogger("keel.server")


@dataclass
class KeelApp:
    """Everything one Keel process runs, for the CLI and for tests to hold on to."""

    settings: KeelSettings
    engine: Engine
    writer: RequestLogWriter
    gateway: Gateway
    asgi: GatewayApp
    keys: KeyRing
    prompts: PromptCatalog
    ledger: SpendLedger
    counters: Counters
    cache: ResponseCache | None
    guards: GuardPolicies
    alerts: AlertEngine


def prepare_local_models(settings: KeelSettings, progress: bool = True) -> None:
    """Build the demo model into the data directory if a route serves it."""
    for route in settings.models.values():
        for dep in route.deployments:
            provider = settings.providers.get(dep.provider)
            if provider is not None and provider.type == "local" and dep.model == DEMO_CHAT_MODEL:
                ensure_demo_model(settings.home, progress=progress)
                return


async def _watch_changes(
    engine: Engine, interval: float, topic: str, on_change: Callable[[], Awaitable[None]]
) -> None:
    """Poll the store's change version of ``topic`` and call ``on_change`` when it moves."""
    seen = (await asyncio.to_thread(read_changes, engine)).get(topic, 0)
    while True:
        await asyncio.sleep(interval)
        try:
            version = (await asyncio.to_thread(read_changes, engine)).get(topic, 0)
            if version != seen:
                seen = version
                await on_change()
        except Exception as exc:  # the store may be briefly unreachable: keep what we have
            log.warning("watching %s changes failed: %s", topic, exc)


def _budget_readings(engine: Engine, ledger: SpendLedger) -> BudgetSource:
    """Every budget's current window, for /metrics (read when Prometheus scrapes)."""

    async def read() -> list[BudgetReading]:
        readings = []
        for budget in await asyncio.to_thread(list_budgets, engine):
            status = await ledger.budget_status(budget)
            readings.append(
                BudgetReading(
                    budget.id,
                    budget.scope,
                    budget.period,
                    budget.team_id,
                    budget.limit_nanos,
                    status.spent + status.reserved,
                )
            )
        return readings

    return read


def label_gates(settings: KeelSettings, engine: Engine) -> list[LabelGate]:
    """What a label move must pass besides permissions (the eval gate, when required)."""
    if not settings.prompts.require_eval_gate:
        return []
    from keel.evals import EvalLabelGate

    return [EvalLabelGate(engine, suites=settings.prompts.eval_suites)]


def build_app(settings: KeelSettings) -> KeelApp:
    # Policies first: a bad one (unknown scanner, invalid regex) stops start-up before
    # anything is opened, with every problem and its location.
    policies = build_policies(settings.guards)
    build_rules(settings)
    engine = create_store_engine(settings.database_url)
    upgrade(engine)
    writer = RequestLogWriter(engine, settings.request_log)
    metrics = GatewayMetrics()
    metrics.watch_log_writer(writer.depth, lambda: writer.written)
    providers: dict[str, Provider] = {
        name: build_provider(name, provider_settings, settings.home)
        for name, provider_settings in settings.providers.items()
    }
    # The admin API always authenticates with keys; the data plane only when enabled.
    keys = KeyRing(engine, settings.access.refresh_interval)
    prompts = PromptCatalog(engine, settings.prompts.refresh_interval)
    counters = create_counters(settings.redis_url, settings.spend)
    alerts = AlertEngine(settings.alerts, engine)
    monitor = DriftMonitor(settings.monitor, engine, home=settings.home)
    # A budget crossing is logged and wakes the alert evaluator at once.
    ledger = SpendLedger(engine, counters, settings.spend, on_budget_alert=alerts.budget_crossed)
    metrics.watch_budgets(_budget_readings(engine, ledger))
    cache: ResponseCache | None = None
    redis = None
    if any(route.cache is not None for route in settings.models.values()):
        if settings.cache.backend == "redis" and settings.redis_url:
            from redis.asyncio import BlockingConnectionPool, Redis

            # Blocking: a burst waits for a connection rather than failing past the limit.
            pool = BlockingConnectionPool.from_url(settings.redis_url, max_connections=64, timeout=2.0)
            redis = Redis(connection_pool=pool)
        cache = build_cache(settings, engine, redis)

    async def ready() -> bool:
        return await asyncio.to_thread(ping, engine)

    guards = GuardPolicies(policies, settings.guards, settings.models, metrics)
    services = GatewayServices(
        keys=keys if settings.access.enabled else None, prompts=prompts, cache=cache, guards=guards
    )
    gateway = Gateway(settings, providers, writer, metrics, ready, services)
    # Promoted models (canaries, live versions) overlay the configured routes.
    release = ReleaseWatcher(settings, engine, apply=gateway.router.set_overlays)
    services.spend = SpendGate(ledger, counters, settings.spend, gateway.router, ledger.limits_for)
    services.embed_with = gateway.embed
    admin = create_admin_app(
        engine=engine,
        keys=keys,
        spend=ledger,
        spend_settings=settings.spend,
        prompts=PromptRegistry(engine, on_change=prompts.reload, gates=label_gates(settings, engine)),
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await writer.start()
        await keys.start()
        await prompts.start()
        await ledger.start()
        await alerts.start()
        await monitor.start()
        await release.start()
        # The classifier's model loads here, not on the first request that needs it.
        await asyncio.to_thread(guards.warm_up)
        watcher = asyncio.create_task(
            _watch_changes(engine, settings.access.refresh_interval, SPEND_TOPIC, ledger.reload)
        )
        try:
            yield
        finally:
            await release.stop()
            await monitor.stop()
            await alerts.stop()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await writer.drain_and_stop(timeout=settings.server.graceful_timeout)
            await ledger.close(timeout_s=settings.server.graceful_timeout)
            await counters.close()
            await keys.stop()
            await prompts.stop()
            if cache is not None:
                await cache.aclose()
            if redis is not None:
                await redis.aclose()
            for provider in providers.values():
                await provider.aclose()
            await gateway.router.aclose()
            log.info("request log drained: %d records written", writer.written)

    mounts: dict[str, ASGIApp] = {"/admin": admin}
    if settings.console.enabled:
        mounts["/ui"] = create_console_app(engine=engine, keys=keys, settings=settings)
    data_plane_keys = keys if settings.access.enabled else None
    apis: dict[str, ASGIApp] = {
        "/v1/feedback": create_feedback_api(engine=engine, keys=data_plane_keys),
        "/v1/monitor": create_predictions_api(engine, data_plane_keys),
    }
    asgi = create_app(gateway, lifespan, mounts, apis)
    return KeelApp(
        settings, engine, writer, gateway, asgi, keys, prompts, ledger, counters, cache, guards, alerts
    )


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
    console = Console(stderr=True)
    if settings.access.create_first_admin:
        secret = ensure_first_admin(app.engine)
        if secret is not None:
            console.print(
                "[bold yellow]First start: created an admin key. It is shown only this once; "
                "store it now:[/bold yellow]"
            )
            print(secret, flush=True)
    console.print(
        f"[bold]Keel[/bold] {__version__}: OpenAI-compatible API at "
        f"[cyan]http://{server.host}:{server.port}/v1[/cyan] — models: {', '.join(settings.models) or 'none'}"
        f" — data in {settings.home} ({display_url(app.engine)})"
    )
    if settings.console.enabled:
        console.print(f"Console: [cyan]http://{server.host}:{server.port}/ui[/cyan] (log in with a key)")
    try:
        uvicorn.Server(uvicorn_config(app, log_level=log_level)).run()
    finally:
        app.engine.dispose()


class EmbeddedServer(uvicorn.Server):
    """A gateway served from a background thread of this process (``keel eval run``
    without ``--gateway``): signals stay with the main thread, so Ctrl-C interrupts the
    job, which then stops the gateway."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def embedded_gateway(settings: KeelSettings) -> Iterator[tuple[KeelApp, str]]:
    """Keel serving ``settings`` on an ephemeral port of 127.0.0.1 in a background
    thread: the app and its base URL. On exit the request log is drained."""
    prepare_local_models(settings)
    server_settings = settings.server.model_copy(update={"host": "127.0.0.1", "port": 0})
    app = build_app(settings.model_copy(update={"server": server_settings}))
    server = EmbeddedServer(uvicorn_config(app, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name="keel-gateway", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            app.engine.dispose()
            raise RuntimeError("the embedded gateway did not start (see the log above)")
        time.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=settings.server.graceful_timeout + 10)
        app.engine.dispose()
