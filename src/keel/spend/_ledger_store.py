"""The spend ledger in the store: appending rows, totals per budget window, live
gateway instances, and crash recovery. Blocking: async callers use ``asyncio.to_thread``.

Spend counts in the window of its ``reserved_at`` (when the request was admitted). An
open reservation is a ``reserve`` row without a ``settle`` row of the same
``reservation_id``; totals count it at its reserved amount.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Select

from keel.spend._counters import BudgetWindow
from keel.spend._prices import Nanos
from keel.spend._tables import spend_instances, spend_ledger

_SCOPE_COLUMNS = {
    "key": spend_ledger.c.key_id,
    "team": spend_ledger.c.team_id,
    "end_user": spend_ledger.c.end_user,
    "model": spend_ledger.c.model,
}


def _insert(connection: Connection) -> Any:
    insert_ = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    # A settlement is written once: by the process, or by recovery, whichever is first.
    return insert_(spend_ledger).on_conflict_do_nothing(index_elements=["reservation_id", "entry"])


def append_ledger_rows(engine: Engine, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append ``rows`` in one transaction (a settlement already written is skipped)."""
    if not rows:
        return
    with engine.begin() as connection:
        connection.execute(_insert(connection), list(rows))


# -- totals -------------------------------------------------------------------------------


def _settled_and_open(where: ColumnElement[bool]) -> tuple[Select[Any], Select[Any]]:
    settled = select(func.coalesce(func.sum(spend_ledger.c.amount_nanos), 0)).where(
        spend_ledger.c.entry == "settle", where
    )
    settle = spend_ledger.alias("settle")
    open_ = (
        select(func.coalesce(func.sum(spend_ledger.c.amount_nanos), 0))
        .select_from(
            spend_ledger.outerjoin(
                settle,
                and_(settle.c.reservation_id == spend_ledger.c.reservation_id, settle.c.entry == "settle"),
            )
        )
        .where(spend_ledger.c.entry == "reserve", settle.c.id.is_(None), where)
    )
    return settled, open_


def _window_filter(scope: str, scope_id: str, start: datetime, end: datetime | None) -> ColumnElement[bool]:
    clause = and_(_SCOPE_COLUMNS[scope] == scope_id, spend_ledger.c.reserved_at >= start)
    return and_(clause, spend_ledger.c.reserved_at < end) if end is not None else clause


def window_totals(engine: Engine, windows: Iterable[BudgetWindow]) -> dict[str, tuple[Nanos, Nanos]]:
    """(settled, open reservations) of each window, from the ledger."""
    out: dict[str, tuple[Nanos, Nanos]] = {}
    with engine.connect() as connection:
        for window in windows:
            budget = window.budget
            settled, open_ = _settled_and_open(
                _window_filter(budget.scope, budget.scope_id, window.start, window.end)
            )
            out[window.key] = (
                int(connection.execute(settled).scalar_one()),
                int(connection.execute(open_).scalar_one()),
            )
    return out


def ledger_spent(engine: Engine, scope: str, scope_id: str, start: datetime, end: datetime | None) -> Nanos:
    """What ``scope``/``scope_id`` spent in [start, end): settlements plus open reservations
    (at their reserved amount)."""
    with engine.connect() as connection:
        settled, open_ = _settled_and_open(_window_filter(scope, scope_id, start, end))
        return int(connection.execute(settled).scalar_one()) + int(connection.execute(open_).scalar_one())


# -- instances ----------------------------------------------------------------------------


def this_host() -> str:
    return socket.gethostname()[:255]


def register_instance(engine: Engine, instance_id: str, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(spend_instances).values(
                id=instance_id, host=this_host(), pid=os.getpid(), started_at=now, heartbeat_at=now
            )
        )


def heartbeat(engine: Engine, instance_id: str, now: datetime | None = None) -> None:
    """Say this instance is alive (re-registering it if recovery took it for dead)."""
    now = now or datetime.now(UTC)
    with engine.begin() as connection:
        updated = connection.execute(
            update(spend_instances).where(spend_instances.c.id == instance_id).values(heartbeat_at=now)
        ).rowcount
    if not updated:
        register_instance(engine, instance_id, now)


def remove_instance(engine: Engine, instance_id: str) -> None:
    with engine.begin() as connection:
        connection.execute(delete(spend_instances).where(spend_instances.c.id == instance_id))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_instances(connection: Connection, timeout_s: float, now: datetime) -> set[str]:
    """Instances whose heartbeat is older than ``timeout_s``, or that ran on this host
    under a process id that no longer exists (a crash restarted at once)."""
    stale_before = now - timedelta(seconds=timeout_s)
    host, me = this_host(), os.getpid()
    dead = set()
    for row in connection.execute(select(spend_instances)):
        crashed_here = row.host == host and row.pid != me and not _pid_alive(row.pid)
        if row.heartbeat_at < stale_before or crashed_here:
            dead.add(row.id)
    return dead


# -- recovery -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecoveredReservation:
    """An open reservation of a dead instance, now settled at its reserved amount."""

    reservation_id: str
    request_id: str
    amount_nanos: Nanos
    reserved_at: datetime
    key_id: str | None
    team_id: str | None
    end_user: str | None
    model: str | None
    instance_id: str


def recover(
    engine: Engine,
    *,
    instance_timeout_s: float = 30.0,
    now: datetime | None = None,
    spare: str | None = None,
    include_gone: bool = True,
) -> list[RecoveredReservation]:
    """Settle, at their reserved amount, the open reservations of every instance that is not
    alive (its heartbeat is stale, or it was on this host and its process is gone), then
    forget those instances. ``include_gone`` also takes instances missing from
    ``spend_instances`` (a full scan of the ledger: done at start, not by the periodic
    sweep). ``spare``: an instance never taken for dead (the caller's own). Returns the
    settlements this call wrote: two processes recovering at once write each one once."""
    now = now or datetime.now(UTC)
    recovered: list[RecoveredReservation] = []
    with engine.begin() as connection:
        dead = dead_instances(connection, instance_timeout_s, now) - {spare}
        if not dead and not include_gone:
            return []
        condition: ColumnElement[bool] = spend_ledger.c.instance_id.in_(dead) if dead else false()
        if include_gone:
            condition = or_(condition, spend_ledger.c.instance_id.not_in(select(spend_instances.c.id)))
        settle = spend_ledger.alias("settle")
        open_rows = connection.execute(
            select(spend_ledger)
            .select_from(
                spend_ledger.outerjoin(
                    settle,
                    and_(
                        settle.c.reservation_id == spend_ledger.c.reservation_id, settle.c.entry == "settle"
                    ),
                )
            )
            .where(spend_ledger.c.entry == "reserve", settle.c.id.is_(None), condition)
        ).all()
        statement = _insert(connection)
        for row in open_rows:
            if spare is not None and row.instance_id == spare:
                continue
            written = connection.execute(
                statement,
                {
                    "at": now,
                    "reservation_id": row.reservation_id,
                    "entry": "settle",
                    "request_id": row.request_id,
                    "amount_nanos": row.amount_nanos,
                    "reserved_at": row.reserved_at,
                    "key_id": row.key_id,
                    "team_id": row.team_id,
                    "end_user": row.end_user,
                    "model": row.model,
                    "instance_id": row.instance_id,
                    "recovered": True,
                },
            ).rowcount
            if written:
                recovered.append(
                    RecoveredReservation(
                        row.reservation_id,
                        row.request_id,
                        int(row.amount_nanos),
                        row.reserved_at,
                        row.key_id,
                        row.team_id,
                        row.end_user,
                        row.model,
                        row.instance_id,
                    )
                )
        if dead:
            connection.execute(delete(spend_instances).where(spend_instances.c.id.in_(dead)))
    return recovered
