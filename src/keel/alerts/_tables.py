"""Alerting's tables (created by migrations 0012 and 0017), on the store's shared ``metadata``.

``alert_state`` holds one row per (rule, label set) that has ever been pending or
firing: its state (``pending``, ``firing`` or ``ok`` once resolved), since when, the
last value seen, and ``version``, which every transition bumps with a compare-and-set
(``UPDATE ... WHERE version = <the one read>``) so that of several processes evaluating
the same rule exactly one records, and so notifies, each transition.

``alert_events`` is the history: one row per firing and per resolved transition, with
the outcome of each channel's notification (``notifications``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from keel.store import UTCDateTime, metadata

alert_state = Table(
    "alert_state",
    metadata,
    Column("rule", String(255), nullable=False),
    # SHA-256 of the canonical JSON of ``labels``: the key of one series of a rule.
    Column("fingerprint", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("team_id", String(64)),
    Column("value", Float),
    Column("threshold", Float),
    Column("summary", Text, nullable=False),
    Column("pending_since", UTCDateTime()),
    Column("started_at", UTCDateTime()),
    Column("resolved_at", UTCDateTime()),
    Column("evaluated_at", UTCDateTime(), nullable=False),
    # The event that recorded the current firing (None while pending or ok).
    Column("event_id", BigInteger),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("rule", "fingerprint", name="pk_alert_state"),
    Index("ix_alert_state_state", "state"),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("rule", String(255), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("summary", Text, nullable=False),
    Column("value", Float),
    Column("threshold", Float),
    Column("team_id", String(64)),
    Column("started_at", UTCDateTime()),
    Column("resolved_at", UTCDateTime()),
    # {channel: {"ok": bool, "attempts": int, "error": str | None}}; {} until delivered.
    Column("notifications", JSON, nullable=False),
    Index("ix_alert_events_at", "at"),
    Index("ix_alert_events_team_id", "team_id"),
)

# Rules managed in the console (created by migration 0017): one row per rule, ``rule``
# the same JSON as a keel.yaml ``alerts.rules`` entry (name included). The evaluator
# builds them beside keel.yaml's, so a name is unique across both.
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("name", String(200), nullable=False),
    Column("rule", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("name", name="pk_alert_rules"),
)
