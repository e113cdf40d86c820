"""Group commit for the spend ledger.

Rows wait in a list; one task writes whatever has gathered in one transaction (in a
worker thread), while the next rows gather behind it. A reservation awaits the batch
that holds its row, so it returns only once the row is durable, and a hundred
reservations arriving together cost a few transactions rather than a hundred.
Settlements are handed in without waiting: a failed batch is retried for them (a crash
before they are written is what recovery is for).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine

from keel.spend._ledger_store import append_ledger_rows

logger = logging.getLogger("keel.spend.ledger")

_MAX_BATCH = 2000
# Settlements nobody waits for gather this long before they are written (unless a
# reservation's batch takes them along sooner): at low concurrency a transaction per
# settlement would cost more CPU than the request itself. A crash in between only means
# recovery settles those reservations at their reserved amount.
SETTLE_DELAY_S = 0.05
_RETRIES = 5


class _Pending:
    __slots__ = ("attempts", "future", "row")

    def __init__(self, row: Mapping[str, Any], future: asyncio.Future[None] | None) -> None:
        self.row = row
        self.future = future
        self.attempts = 0


# Told the rows of every batch once they are committed.
OnWritten = Callable[[Sequence[Mapping[str, Any]]], None]


class LedgerWriter:
    def __init__(self, engine: Engine, on_written: OnWritten | None = None) -> None:
        self._engine = engine
        self._on_written = on_written
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        # Set while nothing is pending or being written.
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        self.batches = 0
        self.failed = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="keel-spend-ledger-writer")

    async def write(self, row: Mapping[str, Any]) -> None:
        """Append ``row`` and return once it is committed (or raise why it is not)."""
        if self._task is None or self._closing:
            raise RuntimeError("the spend ledger writer is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(row, future))
        self._idle.clear()
        self._wake.set()
        # Shielded: a caller cancelled while waiting does not cancel the batch under way.
        await asyncio.shield(future)

    def submit(self, row: Mapping[str, Any]) -> None:
        """Append ``row`` without waiting for it (written within ``SETTLE_DELAY_S``, or
        with the next reservation's batch)."""
        self._pending.append(_Pending(row, None))
        self._idle.clear()
        if self._closing or self._task is None:
            self._wake.set()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(SETTLE_DELAY_S, self._wake.set)

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            batch = self._pending[:_MAX_BATCH]
            del self._pending[:_MAX_BATCH]
            await self._flush(batch)

    async def _flush(self, batch: list[_Pending]) -> None:
        try:
            await asyncio.to_thread(append_ledger_rows, self._engine, [p.row for p in batch])
        except Exception as exc:
            retry = []
            for pending in batch:
                if pending.future is not None:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                        # Its caller may have been cancelled: no "never retrieved" noise.
                        pending.future.exception()
                    continue
                pending.attempts += 1
                if pending.attempts < _RETRIES:
                    retry.append(pending)
                else:
                    self.failed += 1
                    logger.error(
                        "spend ledger: gave up writing a %s row of reservation %s (%s); recovery settles "
                        "it at its reserved amount",
                        pending.row["entry"],
                        pending.row["reservation_id"],
                        exc,
                    )
            if retry:
                logger.warning("spend ledger: writing %d rows failed (%s); retrying", len(retry), exc)
                await asyncio.sleep(min(0.05 * 2 ** retry[0].attempts, 2.0))
                self._pending[:0] = retry
            return
        self.batches += 1
        for pending in batch:
            if pending.future is not None and not pending.future.done():
                pending.future.set_result(None)
        if self._on_written is not None:
            try:
                self._on_written([p.row for p in batch])
            except Exception:
                logger.exception("spend ledger: the written-rows callback failed")

    async def flush(self, timeout_s: float | None = None) -> None:
        """Wait until everything handed in so far is written (or given up on)."""
        if self._task is None or self._task.done():
            return
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            logger.error("spend ledger: %d rows still not written", len(self._pending))

    async def drain(self, timeout_s: float | None = None) -> None:
        """Write everything handed in so far, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                logger.error("spend ledger: %d rows not written at shutdown", len(self._pending))
