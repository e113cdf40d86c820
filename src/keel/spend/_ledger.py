"""The spend ledger service: reserve before the upstream call, settle after it.

``reserve`` charges every applicable budget window through the counters (one atomic
step) and returns only when its ``reserve`` row is committed (group commit), so a crash
never loses an admitted request's reservation. ``settle`` releases the reservation and
charges the actual cost; its row is written shortly after. Crash recovery (at start and
by a periodic sweep) settles the open reservations of dead instances at their reserved
amount, so recorded spend is never below real spend. Counters that outlive the process
(Redis) hold a settlement as pending until its row is written, so that recovering a
process that died in between moves the reservation to spent once, at the amount the
ledger records.

Budgets, prices and rate limits are held in memory; ``reload`` (on the ``spend`` change topic) reads
them again. Counters for the current budget windows are loaded from the ledger when a
backend does not hold them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from keel.core import SpendSettings
from keel.spend._budgets import Budget, list_budgets
from keel.spend._counters import BudgetState, BudgetWindow, Counters, LimitWindow
from keel.spend._errors import SpendUnavailable
from keel.spend._ledger_store import (
    RecoveredReservation,
    heartbeat,
    ledger_spent,
    recover,
    register_instance,
    remove_instance,
    window_totals,
)
from keel.spend._ledger_writer import LedgerWriter
from keel.spend._periods import Period, window_of
from keel.spend._price_store import load_price_table
from keel.spend._prices import Nanos, PriceTable
from keel.spend._rate_limits import RateLimit, list_rate_limits

logger = logging.getLogger("keel.spend.ledger")


@dataclass(frozen=True, slots=True)
class SpendScopes:
    """Who and what a request spends for: each names the budgets that apply."""

    key_id: str | None = None
    team_id: str | None = None
    end_user: str | None = None
    model: str | None = None

    def pairs(self) -> tuple[tuple[str, str | None], ...]:
        return (
            ("key", self.key_id),
            ("team", self.team_id),
            ("end_user", self.end_user),
            ("model", self.model),
        )


@dataclass(slots=True)
class Reservation:
    id: str
    request_id: str
    scopes: SpendScopes
    amount: Nanos
    reserved_at: datetime
    # The windows the counters reserved against (empty: nothing to release).
    windows: tuple[BudgetWindow, ...] = ()
    states: tuple[BudgetState, ...] = ()
    settled: bool = field(default=False, compare=False)
    actual: Nanos | None = None


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    budget: Budget
    window_start: datetime
    window_end: datetime | None
    spent: Nanos
    reserved: Nanos

    @property
    def remaining(self) -> Nanos:
        return self.budget.limit_nanos - self.spent - self.reserved


BudgetAlert = Callable[[BudgetState], None]


class SpendLedger:
    """See the module docstring. One per gateway process; ``start`` before use and
    ``close`` at shutdown."""

    def __init__(
        self,
        engine: Engine,
        counters: Counters,
        settings: SpendSettings | None = None,
        *,
        instance_id: str | None = None,
        on_budget_alert: BudgetAlert | None = None,
    ) -> None:
        self.engine = engine
        self.counters = counters
        self.settings = settings or SpendSettings()
        self.instance_id = instance_id or uuid.uuid4().hex
        self.prices: PriceTable = PriceTable.builtin()
        self._on_budget_alert = on_budget_alert
        self._budgets: dict[tuple[str, str], list[Budget]] = {}
        self._windows: dict[str, BudgetWindow] = {}
        # (scope, scope_id) -> the LimitWindow of that key's or team's rate limit
        self._limits: dict[tuple[str, str], LimitWindow] = {}
        self._open: dict[str, Reservation] = {}
        self._writer = LedgerWriter(engine, on_written=self._written)
        # Reservations settled in the counters whose settle rows are not written yet (the
        # counters remember them until then: see ``Counters.settle``).
        self._settling: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._heartbeat_task: asyncio.Task[None] | None = None
        counters.window_loader = self._load_windows
        self.recovered = 0

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Register this instance, recover dead instances' reservations, load budgets and
        prices, and start the writer and the heartbeat."""
        await asyncio.to_thread(register_instance, self.engine, self.instance_id)
        # Budgets first: recovery moves what it settles from reserved to spent in their windows.
        await self.reload()
        await self.sweep(include_gone=True)
        self._writer.start()
        self._heartbeat_task = asyncio.create_task(self._heartbeats(), name="keel-spend-heartbeat")

    async def reload(self) -> None:
        """Read budgets, prices and rate limits again (call when the ``spend`` change topic
        moves)."""
        budgets, prices, limits = await asyncio.to_thread(self._read_budgets_and_prices)
        self._limits = {(limit.scope, limit.scope_id): limit.window for limit in limits}
        index: dict[tuple[str, str], list[Budget]] = {}
        for budget in budgets:
            index.setdefault((budget.scope, budget.scope_id), []).append(budget)
        self._budgets = index
        self._windows = {}
        self.prices = prices
        # Load the current windows now rather than on some request's path.
        now = datetime.now(UTC)
        windows = [self._window(budget, now) for budget in budgets]
        if windows:
            try:
                await self.counters.read(windows)
            except SpendUnavailable as exc:  # the first request that needs them tries again
                logger.warning("spend ledger: could not load budget counters: %s", exc.message)

    def _read_budgets_and_prices(self) -> tuple[list[Budget], PriceTable, list[RateLimit]]:
        return (
            list_budgets(self.engine),
            load_price_table(self.engine, self.settings),
            list_rate_limits(self.engine),
        )

    def limits_for(self, key_id: str | None, team_id: str | None) -> list[LimitWindow]:
        """The rate limits set on the key and on the team (from memory): the windows for
        ``Counters.take``, with the model's limits from keel.yaml added by the caller."""
        found = []
        if key_id is not None and (limit := self._limits.get(("key", key_id))) is not None:
            found.append(limit)
        if team_id is not None and (limit := self._limits.get(("team", team_id))) is not None:
            found.append(limit)
        return found

    async def close(self, timeout_s: float | None = 10.0) -> None:
        """Settle what is still open at its reserved amount, write every row, and leave."""
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
        for reservation in list(self._open.values()):
            await self.settle(reservation, reservation.amount, recovered=True)
        if self._background:
            await asyncio.wait(self._background, timeout=timeout_s)
        await self._writer.drain(timeout_s)
        if self._background:  # the counters told of the last rows written
            await asyncio.wait(self._background, timeout=timeout_s)
        try:
            await asyncio.to_thread(remove_instance, self.engine, self.instance_id)
        except Exception as exc:  # the next start's recovery finds nothing open anyway
            logger.warning("spend ledger: could not deregister instance %s: %s", self.instance_id, exc)

    async def drain(self, timeout_s: float | None = None) -> None:
        """Wait until every ledger row handed in so far is written (settlements are
        written shortly after ``settle``; this is for shutdown and tests)."""
        await self._writer.flush(timeout_s)

    async def _heartbeats(self) -> None:
        interval = self.settings.heartbeat_interval_s
        sweep_every = max(1, round(self.settings.instance_timeout_s / 2 / interval))
        beats = 0
        while True:
            await asyncio.sleep(interval)
            beats += 1
            try:
                await asyncio.to_thread(heartbeat, self.engine, self.instance_id)
                if beats % sweep_every == 0:
                    await self.sweep()
            except Exception as exc:
                logger.warning("spend ledger: heartbeat or sweep failed: %s", exc)

    async def sweep(self, *, include_gone: bool = False) -> list[RecoveredReservation]:
        """Recover dead instances' open reservations (settled at their reserved amount) and
        move them from reserved to spent in the counters."""
        recovered = await asyncio.to_thread(
            recover,
            self.engine,
            instance_timeout_s=self.settings.instance_timeout_s,
            spare=self.instance_id,
            include_gone=include_gone,
        )
        for item in recovered:
            scopes = SpendScopes(item.key_id, item.team_id, item.end_user, item.model)
            windows = self.windows_for(scopes, item.reserved_at)
            if windows:
                await self.counters.recover(
                    windows,
                    item.amount_nanos,
                    instance_id=item.instance_id,
                    reservation_id=item.reservation_id,
                )
        if recovered:
            self.recovered += len(recovered)
            logger.warning(
                "spend ledger: settled %d open reservations of dead gateway instances at their "
                "reserved amount",
                len(recovered),
            )
        return recovered

    # -- the request path -----------------------------------------------------------------

    def windows_for(self, scopes: SpendScopes, at: datetime) -> list[BudgetWindow]:
        """The windows of every budget that applies to ``scopes`` at ``at``."""
        if not self._budgets:
            return []
        windows = []
        for scope, scope_id in scopes.pairs():
            if scope_id is not None:
                for budget in self._budgets.get((scope, scope_id), ()):
                    windows.append(self._window(budget, at))
        return windows

    def _window(self, budget: Budget, at: datetime) -> BudgetWindow:
        window = self._windows.get(budget.id)
        if window is not None and window.start <= at and (window.end is None or at < window.end):
            return window
        start, end = window_of(budget.period, at)
        window = self._windows[budget.id] = BudgetWindow.of(budget, start, end)
        return window

    async def reserve(
        self, request_id: str, scopes: SpendScopes, amount: Nanos, *, at: datetime | None = None
    ) -> Reservation:
        """Reserve ``amount`` (the request's most possible cost) against every budget of
        ``scopes``; raises ``BudgetExceeded`` when a hard one would go over, and
        ``SpendUnavailable`` when the ledger cannot record it. Durable when it returns."""
        if amount < 0:
            raise ValueError("a reservation cannot be negative")
        at = at or datetime.now(UTC)
        windows = self.windows_for(scopes, at)
        states = await self.counters.reserve(windows, amount) if windows else []
        reservation = Reservation(
            uuid.uuid4().hex, request_id, scopes, amount, at, tuple(windows) if states else (), tuple(states)
        )
        try:
            await self._writer.write(self._row(reservation, "reserve", amount, at))
        except asyncio.CancelledError:
            # The row may still be written: settle at zero, which releases it either way.
            reservation.settled = True
            self._spawn(self._release(reservation))
            raise
        except Exception as exc:
            # Marked as settled in the counters (no settle row follows to clear the mark):
            # should the row have been written after all, recovery must not release the
            # reservation a second time.
            await self._settle_counters(reservation, 0, row_follows=False)
            raise SpendUnavailable(f"The spend ledger could not record the reservation: {exc}") from exc
        self._open[reservation.id] = reservation
        if self._on_budget_alert is not None:
            for state in states:
                if state.alert_crossed or state.limit_crossed:
                    self._on_budget_alert(state)
        return reservation

    async def settle(
        self, reservation: Reservation, actual: Nanos | None, *, recovered: bool = False
    ) -> None:
        """Release the reservation and charge ``actual`` (None: unpriced, so 0). Once per
        reservation; later calls do nothing."""
        if reservation.settled:
            return
        reservation.settled = True
        actual = max(0, actual or 0)
        reservation.actual = actual
        self._open.pop(reservation.id, None)
        await self._settle_counters(reservation, actual)
        self._writer.submit(self._row(reservation, "settle", actual, datetime.now(UTC), recovered=recovered))

    async def _release(self, reservation: Reservation) -> None:
        await self._settle_counters(reservation, 0)
        self._writer.submit(self._row(reservation, "settle", 0, datetime.now(UTC)))

    async def _settle_counters(
        self, reservation: Reservation, actual: Nanos, *, row_follows: bool = True
    ) -> None:
        if not reservation.windows:
            return
        if row_follows:
            self._settling.add(reservation.id)
        await self.counters.settle(
            reservation.windows,
            reservation.amount,
            actual,
            instance_id=self.instance_id,
            reservation_id=reservation.id,
        )

    def _written(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rows are in the ledger: the counters may forget the settlements among them."""
        if not self._settling:
            return
        done = [
            row["reservation_id"]
            for row in rows
            if row["entry"] == "settle" and row["reservation_id"] in self._settling
        ]
        if done:
            self._settling.difference_update(done)
            self._spawn(self.counters.forget_settled(self.instance_id, done))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _row(
        self, reservation: Reservation, entry: str, amount: Nanos, at: datetime, *, recovered: bool = False
    ) -> dict[str, Any]:
        scopes = reservation.scopes
        return {
            "at": at,
            "reservation_id": reservation.id,
            "entry": entry,
            "request_id": reservation.request_id[:64],
            "amount_nanos": amount,
            "reserved_at": reservation.reserved_at,
            "key_id": scopes.key_id,
            "team_id": scopes.team_id,
            "end_user": scopes.end_user[:255] if scopes.end_user else None,
            "model": scopes.model[:255] if scopes.model else None,
            "instance_id": self.instance_id,
            "recovered": recovered,
        }

    @property
    def open_reservations(self) -> int:
        return len(self._open)

    @property
    def ledger_batches(self) -> int:
        """Transactions the ledger writer committed (group commit: fewer than rows)."""
        return self._writer.batches

    @property
    def ledger_backlog(self) -> int:
        """Rows handed in and not written yet."""
        return self._writer.backlog

    # -- totals ---------------------------------------------------------------------------

    async def _load_windows(self, windows: Sequence[BudgetWindow]) -> dict[str, tuple[Nanos, Nanos]]:
        try:
            return await asyncio.to_thread(window_totals, self.engine, windows)
        except Exception as exc:
            raise SpendUnavailable(
                f"The spend ledger could not be read to load budget counters: {exc}"
            ) from exc

    async def spent(self, scope: str, scope_id: str, period: Period, at: datetime | None = None) -> Nanos:
        """What ``scope``/``scope_id`` spent in the ``period`` window holding ``at``, from the
        ledger (open reservations count at their reserved amount)."""
        start, end = window_of(period, at or datetime.now(UTC))
        return await asyncio.to_thread(ledger_spent, self.engine, scope, scope_id, start, end)

    async def budget_status(self, budget: Budget, at: datetime | None = None) -> BudgetStatus:
        """The budget's current window as the ledger has it (every process's spend)."""
        start, end = window_of(budget.period, at or datetime.now(UTC))
        window = BudgetWindow.of(budget, start, end)
        totals = await asyncio.to_thread(window_totals, self.engine, [window])
        spent, reserved = totals[window.key]
        return BudgetStatus(budget, start, end, spent, reserved)


def budget_status(engine: Engine, budget: Budget, at: datetime | None = None) -> BudgetStatus:
    """``SpendLedger.budget_status`` for callers without a ledger (CLI, admin API)."""
    start, end = window_of(budget.period, at or datetime.now(UTC))
    window = BudgetWindow.of(budget, start, end)
    spent, reserved = window_totals(engine, [window])[window.key]
    return BudgetStatus(budget, start, end, spent, reserved)
