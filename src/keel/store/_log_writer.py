"""Writing request records off the request path.

The gateway ``put``s a record and moves on; one asyncio task takes records from a
bounded queue in batches (up to ``batch_size``, or whatever arrived within
``flush_interval`` of the first) and inserts each batch with one executemany in a worker
thread, so the event loop never waits on the database.

Nothing is lost without a trace. A full queue makes ``put`` wait (backpressure, never a
drop). A batch that fails for a transient reason (database down or locked) is retried
with exponential backoff; one that fails for its data is inserted row by row so that
only the bad rows are lost. Rows given up on are logged and counted in ``failed``; rows
abandoned because ``drain_and_stop`` ran out of time are logged and counted in
``dropped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from keel.core import RequestLogSettings
from keel.store._record import RequestRecord
from keel.store._request_log import insert_records

logger = logging.getLogger("keel.store.request_log")

# The queue item that tells the drain task to finish.
_STOP = None


class RequestLogWriter:
    def __init__(
        self,
        engine: Engine,
        settings: RequestLogSettings,
        *,
        max_attempts: int = 4,
        retry_backoff: float = 0.5,
    ) -> None:
        self._engine = engine
        self._batch_size = settings.batch_size
        self._flush_interval = settings.flush_interval
        self._max_attempts = max_attempts
        self._retry_backoff = retry_backoff
        self._queue: asyncio.Queue[RequestRecord | None] = asyncio.Queue(maxsize=settings.queue_size)
        self._task: asyncio.Task[None] | None = None
        # Set by ``put`` when a whole batch is queued, and by ``drain_and_stop``.
        self._batch_ready = asyncio.Event()
        self._closed = False
        # Callers blocked in ``put`` on a full queue: their records are not queued yet
        # but are owed a write all the same.
        self._waiting_puts = 0
        self._in_flight = 0
        self._written = 0
        self._accepted = 0
        self._failed = 0
        self._dropped = 0

    @property
    def accepted(self) -> int:
        """Records taken by ``put`` so far."""
        return self._accepted

    def settled(self) -> bool:
        """Whether every record accepted so far is written or accounted as lost."""
        return self._written + self._failed + self._dropped >= self._accepted

    @property
    def written(self) -> int:
        """Records confirmed in the database."""
        return self._written

    @property
    def failed(self) -> int:
        """Records given up on after retries (each one logged)."""
        return self._failed

    @property
    def dropped(self) -> int:
        """Records abandoned because ``drain_and_stop`` timed out (never a full queue)."""
        return self._dropped

    def depth(self) -> int:
        """Records waiting to be written (for the queue-depth metric)."""
        return self._queue.qsize() + self._waiting_puts

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("request log writer already started")
        self._task = asyncio.create_task(self._drain(), name="keel-request-log-writer")

    async def put(self, record: RequestRecord) -> None:
        """Queue ``record``; waits while the queue is full."""
        if self._closed:
            raise RuntimeError("request log writer is stopped")
        self._waiting_puts += 1
        try:
            await self._queue.put(record)
        finally:
            self._waiting_puts -= 1
        if self._queue.qsize() >= self._batch_size:
            self._batch_ready.set()
        self._accepted += 1

    async def drain_and_stop(self, timeout: float | None = None) -> None:
        """Write every record queued (or being put) so far, then stop.

        With a ``timeout``, whatever is still unwritten when it expires is abandoned:
        logged and counted in ``dropped``.
        """
        if self._closed:
            return
        if self._task is None:
            await self.start()
        assert self._task is not None
        self._closed = True
        try:
            async with asyncio.timeout(timeout):
                await self._queue.put(_STOP)
                self._batch_ready.set()
                await asyncio.shield(self._task)
        except TimeoutError:
            # The batch being inserted is not confirmed (its thread runs on): count it.
            unconfirmed = self._in_flight
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._abandon_remaining(unconfirmed, timeout)

    def _abandon_remaining(self, unconfirmed: int, timeout: float | None) -> None:
        lost = unconfirmed + self._waiting_puts
        while not self._queue.empty():
            if self._queue.get_nowait() is not _STOP:
                lost += 1
        self._dropped += lost
        if lost:
            logger.error("request log: stop timed out after %ss; %d records not written", timeout, lost)

    async def _drain(self) -> None:
        stopping = False
        while True:
            if stopping and self._queue.empty():
                if self._waiting_puts == 0:
                    return
                # A put woken by free space has not run yet; let it.
                await asyncio.sleep(0.001)
                continue
            batch, saw_stop = await self._next_batch(wait=not stopping)
            stopping = stopping or saw_stop
            if batch:
                self._in_flight = len(batch)
                try:
                    await self._write(batch)
                except Exception:
                    # The drain task must outlive any single batch.
                    self._failed += len(batch)
                    logger.exception("request log: %d records not written", len(batch))
                finally:
                    self._in_flight = 0

    async def _next_batch(self, *, wait: bool) -> tuple[list[RequestRecord], bool]:
        """Up to ``batch_size`` records: the first one (awaited unless ``wait`` is
        false), then whatever arrives within ``flush_interval`` of it.

        After the first record the task sleeps until the deadline or until ``put`` says
        a full batch is waiting, then takes what is queued without awaiting each record:
        waking once per record would cost the event loop a task switch per request.
        """
        batch: list[RequestRecord] = []
        if wait:
            first = await self._queue.get()
        elif self._queue.empty():
            return batch, False
        else:
            first = self._queue.get_nowait()
        if first is _STOP:
            return batch, True
        batch.append(first)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._flush_interval
        while True:
            while len(batch) < self._batch_size and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    return batch, True
                batch.append(item)
            remaining = deadline - loop.time()
            if len(batch) >= self._batch_size or not wait or remaining <= 0:
                return batch, False
            self._batch_ready.clear()
            if self._queue.qsize() + len(batch) >= self._batch_size:
                continue
            try:
                async with asyncio.timeout(remaining):
                    await self._batch_ready.wait()
            except TimeoutError:
                pass

    async def _write(self, batch: list[RequestRecord]) -> None:
        for attempt in range(1, self._max_attempts + 1):
            try:
                await asyncio.to_thread(insert_records, self._engine, batch)
            except (OperationalError, InterfaceError) as exc:
                # The database is down, locked or restarting: the same batch may succeed later.
                if attempt == self._max_attempts:
                    self._give_up(batch, exc)
                    return
                delay = self._retry_backoff * 2 ** (attempt - 1)
                logger.warning(
                    "request log: insert of %d records failed (attempt %d/%d), retrying in %.2fs: %s",
                    len(batch),
                    attempt,
                    self._max_attempts,
                    delay,
                    _first_line(exc),
                )
                await asyncio.sleep(delay)
            except Exception:
                # Something in the data (a duplicate id, a value the driver refuses):
                # retrying the batch cannot help, but the other rows can still go in.
                refused = await asyncio.to_thread(_insert_one_by_one, self._engine, batch)
                for record, error in refused:
                    self._give_up([record], error)
                self._written += len(batch) - len(refused)
                return
            else:
                self._written += len(batch)
                return

    def _give_up(self, records: Sequence[RequestRecord], exc: BaseException) -> None:
        self._failed += len(records)
        shown = ", ".join(record.id for record in records[:5])
        more = f" and {len(records) - 5} more" if len(records) > 5 else ""
        logger.error(
            "request log: %d records not written (%s%s): %s", len(records), shown, more, _first_line(exc)
        )


def _insert_one_by_one(
    engine: Engine, batch: Sequence[RequestRecord]
) -> list[tuple[RequestRecord, Exception]]:
    """Insert each record on its own; returns the ones the database refused, and why."""
    refused: list[tuple[RequestRecord, Exception]] = []
    for record in batch:
        try:
            insert_records(engine, [record])
        except Exception as error:
            refused.append((record, error))
    return refused


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
