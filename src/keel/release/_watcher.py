"""The server's side of releases: keep the gateway's routes in step with the store's
runtime deployments, and roll canaries back on their own when they cross a threshold.

``ReleaseWatcher(settings, engine, apply=gateway.router.set_overlays)``: ``start``
applies the current deployments at once (before the first request), then polls the
``release`` change topic every ``release.refresh_interval`` and re-applies when it
moved; every ``release.interval`` it compares every canary with production
(``check_canaries``) and, with ``auto_rollback``, rolls back the ones whose verdict is
``rollback``. Every replica may run one: a rollback happens once (the second finds no
canary, or another one, and leaves it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, select

from keel.access import Actor
from keel.core import KeelError, KeelSettings
from keel.core._settings_release import ReleaseSettings
from keel.release._canary import CanaryReport, canary_report
from keel.release._deployments import (
    CHANGE_TOPIC,
    ModelDeployment,
    RollbackResult,
    active_deployments,
    rollback,
    route_release,
)
from keel.release._tables import model_deployments
from keel.store import read_changes

log = logging.getLogger("keel.release")

ApplyDeployments = Callable[[Sequence[ModelDeployment]], object]


def release_settings(settings: KeelSettings) -> ReleaseSettings:
    """``settings.release`` (the defaults while KeelSettings has no such field)."""
    value = getattr(settings, "release", None)
    return value if isinstance(value, ReleaseSettings) else ReleaseSettings()


@dataclass(frozen=True, slots=True)
class CanaryCheck:
    report: CanaryReport
    rolled_back: RollbackResult | None = None


def canary_routes(engine: Engine) -> list[str]:
    query = select(model_deployments.c.route).where(model_deployments.c.state == "canary").distinct()
    with engine.connect() as connection:
        return sorted(row.route for row in connection.execute(query))


def check_canaries(
    engine: Engine,
    settings: ReleaseSettings,
    *,
    routes: Sequence[str] | None = None,
    auto_rollback: bool | None = None,
    actor: Actor | None = None,
) -> list[CanaryCheck]:
    """Compare each canary (of ``routes``, default all) with production and, with
    ``auto_rollback`` (default: the setting), roll back those whose verdict is
    ``rollback``, audited as ``model.rollback.auto``."""
    do_rollback = settings.auto_rollback if auto_rollback is None else auto_rollback
    who = actor or Actor.system("release-watcher")
    checks = []
    for route in routes if routes is not None else canary_routes(engine):
        release = route_release(engine, route)
        if release.canary is None:
            continue
        report = canary_report(engine, route, settings, release=release)
        rolled_back = None
        if do_rollback and report.verdict == "rollback":
            try:
                rolled_back = rollback(
                    engine,
                    route,
                    actor=who,
                    reason="; ".join(report.reasons),
                    automatic=True,
                    only_canary=report.canary.id,
                )
            except KeelError as exc:  # another replica was first, or the canary changed
                log.info("canary of %s not rolled back: %s", route, exc.message)
            else:
                log.warning(
                    "canary %s of %s rolled back: %s", report.canary.name, route, "; ".join(report.reasons)
                )
        checks.append(CanaryCheck(report, rolled_back))
    return checks


class ReleaseWatcher:
    def __init__(
        self, settings: KeelSettings, engine: Engine, *, apply: ApplyDeployments | None = None
    ) -> None:
        self.settings = release_settings(settings)
        self.engine = engine
        self.apply = apply
        self._seen: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        if self.apply is not None:
            await self.reload()
            self._tasks.append(asyncio.create_task(self._poll(), name="keel-release-poll"))
        self._tasks.append(asyncio.create_task(self._evaluate(), name="keel-release-canaries"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def reload(self) -> None:
        """Apply the store's canary and live deployments to the gateway now."""
        if self.apply is None:
            return
        async with self._lock:
            version = (await asyncio.to_thread(read_changes, self.engine)).get(CHANGE_TOPIC, 0)
            deployments = await asyncio.to_thread(active_deployments, self.engine)
            self.apply(deployments)
            self._seen = version

    async def check(self) -> list[CanaryCheck]:
        """One evaluation of every canary (rolling back as configured)."""
        checks = await asyncio.to_thread(check_canaries, self.engine, self.settings)
        if any(check.rolled_back is not None for check in checks):
            await self.reload()
        return checks

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.refresh_interval)
            try:
                version = (await asyncio.to_thread(read_changes, self.engine)).get(CHANGE_TOPIC, 0)
                if version != self._seen:
                    await self.reload()
            except Exception as exc:  # the store may be briefly unreachable: keep what we have
                log.warning("reloading model deployments failed: %s", exc)

    async def _evaluate(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval)
            try:
                await self.check()
            except Exception as exc:
                log.warning("checking canaries failed: %s", exc)
