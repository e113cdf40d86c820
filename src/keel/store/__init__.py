"""Persistence: engine, tables, migrations, the request log and its writer."""

from keel.store._audit import AuditEntry, append_audit, read_audit
from keel.store._changes import bump_change, read_changes
from keel.store._engine import create_store_engine, display_url, normalize_url, ping
from keel.store._log_writer import RequestLogWriter
from keel.store._migrate import current_revision, head_revision, upgrade
from keel.store._record import RequestRecord
from keel.store._request_log import (
    StatusFilter,
    cap_body,
    get_request,
    insert_records,
    recent_requests,
    status_condition,
)
from keel.store._tables import UTCDateTime, audit_log, keel_changes, metadata, request_log

__all__ = [
    "AuditEntry",
    "RequestLogWriter",
    "RequestRecord",
    "StatusFilter",
    "UTCDateTime",
    "append_audit",
    "audit_log",
    "bump_change",
    "cap_body",
    "create_store_engine",
    "current_revision",
    "display_url",
    "get_request",
    "head_revision",
    "insert_records",
    "keel_changes",
    "metadata",
    "normalize_url",
    "ping",
    "read_audit",
    "read_changes",
    "recent_requests",
    "request_log",
    "status_condition",
    "upgrade",
]
