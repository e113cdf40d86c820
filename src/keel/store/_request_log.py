"""Reading and writing ``request_log`` rows as ``RequestRecord`` values."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Engine, String, Text, and_, or_, select

from keel.core import InvalidRequest
from keel.store._record import RequestRecord
from keel.store._tables import request_log

StatusFilter = int | Literal["ok", "error"]

_FIELDS = tuple(f.name for f in dataclasses.fields(RequestRecord))
# Client-supplied values (a model name, an end-user id) can be longer than their column;
# PostgreSQL would reject the whole batch, so they are clipped instead.
_MAX_LENGTHS = {
    column.name: column.type.length
    for column in request_log.columns
    if isinstance(column.type, String) and column.type.length is not None
}


def cap_body(text: str | None, limit: int) -> tuple[str | None, bool]:
    """``text`` cut to at most ``limit`` bytes of UTF-8, and whether anything was cut.

    The cut never splits a character. ``limit`` 0 drops the body. Lone surrogates (a
    JSON ``"\\ud800"`` escape decodes to one) cannot be stored by any driver and become
    ``?``.
    """
    if text is None:
        return None, False
    if limit <= 0:
        return None, text != ""
    # A character is at least one byte, so only the first ``limit`` characters can
    # matter: the work stays bounded by ``limit`` however large the body is.
    head = text[:limit]
    try:
        data = head.encode("utf-8")
    except UnicodeEncodeError:
        data = head.encode("utf-8", errors="replace")
        head = data.decode("utf-8")
    if len(data) <= limit:
        return head, len(text) > limit
    # "ignore" only drops the incomplete character the byte cut left at the end.
    return data[:limit].decode("utf-8", errors="ignore"), True


_TEXT_COLUMNS = frozenset(
    column.name for column in request_log.columns if isinstance(column.type, String | Text)
)


def _row_from_record(record: RequestRecord) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in _FIELDS}
    for name, value in row.items():
        if isinstance(value, str):
            limit = _MAX_LENGTHS.get(name)
            row[name] = _storable(value[:limit] if limit is not None else value)
    return row


def _storable(value: str) -> str:
    """``value`` without what a driver refuses, so one odd row cannot fail a batch."""
    # PostgreSQL text cannot hold NUL; a broken upstream can send one.
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", errors="replace").decode("utf-8")
    return value


def _record_from_row(row: Any) -> RequestRecord:
    values = dict(row._mapping)
    values["extra"] = values.get("extra") or {}
    return RequestRecord(**{name: values[name] for name in _FIELDS})


def insert_records(engine: Engine, records: Iterable[RequestRecord]) -> int:
    """Insert ``records`` in one transaction (one executemany); returns how many."""
    if engine.dialect.name == "sqlite":
        # The request log is written for every request: on SQLite, plain tuples through
        # the driver cost a third of what SQLAlchemy's per-row bind processing does.
        tuples = [_sqlite_tuple(record) for record in records]
        if not tuples:
            return 0
        with engine.begin() as connection:
            connection.exec_driver_sql(_SQLITE_INSERT, tuples)
        return len(tuples)
    rows = [_row_from_record(record) for record in records]
    if not rows:
        return 0
    with engine.begin() as connection:
        connection.execute(request_log.insert(), rows)
    return len(rows)


_SQLITE_INSERT = f"INSERT INTO request_log ({', '.join(_FIELDS)}) VALUES ({', '.join('?' for _ in _FIELDS)})"
_CREATED_AT = _FIELDS.index("created_at")
_EXTRA = _FIELDS.index("extra")
_GUARDS = _FIELDS.index("guards")
_STRING_FIELDS = [(i, _MAX_LENGTHS.get(name)) for i, name in enumerate(_FIELDS) if name in _TEXT_COLUMNS]


def _sqlite_tuple(record: RequestRecord) -> tuple[Any, ...]:
    """``record`` as the driver takes it, in the form SQLAlchemy stores and reads back:
    timestamps as naive UTC text, ``extra`` as JSON text (NULL when empty)."""
    values = [getattr(record, name) for name in _FIELDS]
    created = record.created_at
    if created.tzinfo is not None:
        created = created.astimezone(UTC)
    values[_CREATED_AT] = created.strftime("%Y-%m-%d %H:%M:%S.%f")
    values[_EXTRA] = json.dumps(record.extra, default=str) if record.extra else None
    values[_GUARDS] = json.dumps(record.guards, default=str) if record.guards is not None else None
    for i, limit in _STRING_FIELDS:
        value = values[i]
        if isinstance(value, str):
            values[i] = _storable(value[:limit] if limit is not None else value)
    return tuple(values)


def status_condition(status: StatusFilter | str) -> ColumnElement[bool]:
    """The ``request_log`` rows with ``status``: ``ok``, ``error`` or an HTTP code."""
    failed = or_(request_log.c.status >= 400, request_log.c.error_type.is_not(None))
    if status == "error":
        # A stream that broke after its first byte keeps status 200 but has an error_type.
        return failed
    if status == "ok":
        return and_(request_log.c.status < 400, request_log.c.error_type.is_(None))
    if isinstance(status, str):
        if not status.isdigit():
            raise InvalidRequest(
                f"status must be an HTTP status code, 'ok' or 'error', not {status!r}", param="status"
            )
        status = int(status)
    return request_log.c.status == status


def recent_requests(
    engine: Engine,
    *,
    model: str | None = None,
    status: StatusFilter | str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[RequestRecord]:
    """The newest requests first, filtered by requested model, status (a code, ``"ok"``
    or ``"error"``) and time (``since`` inclusive; a naive time is taken as UTC)."""
    if limit < 1:
        raise InvalidRequest(f"limit must be at least 1, not {limit}", param="limit")
    query = select(request_log)
    if model is not None:
        query = query.where(request_log.c.requested_model == model)
    if status is not None:
        query = query.where(status_condition(status))
    if since is not None:
        query = query.where(request_log.c.created_at >= _as_utc(since))
    query = query.order_by(request_log.c.created_at.desc(), request_log.c.id.desc()).limit(limit)
    with engine.connect() as connection:
        return [_record_from_row(row) for row in connection.execute(query)]


def get_request(engine: Engine, request_id: str) -> RequestRecord | None:
    """The request with this id, or None."""
    with engine.connect() as connection:
        row = connection.execute(select(request_log).where(request_log.c.id == request_id)).first()
    return _record_from_row(row) if row is not None else None


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
