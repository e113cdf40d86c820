"""The spend tables (registered on ``keel.store.metadata``; migrations 0004 and 0007 create them).

Key, team and end-user ids are plain strings without foreign keys: the ledger outlives
the keys and teams it names, and spend must not depend on the access tables.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, String, Table, UniqueConstraint

from keel.store import UTCDateTime, metadata

_ID = BigInteger().with_variant(Integer, "sqlite")

# Price rows set by API or CLI; they override keel.yaml and the built-in table from
# ``effective_from`` on. The price is decimal text so that no float ever touches money.
prices = Table(
    "prices",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("model", String(255), nullable=False),
    Column("token_type", String(16), nullable=False),
    Column("usd_per_million", String(40), nullable=False),
    Column("effective_from", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(255), nullable=False),
    Index("ix_prices_model", "model"),
)

# One budget per scope and period; ``team_id`` is the team that owns it (the team itself,
# a key's team), NULL for organisation-wide budgets on end users and models.
budgets = Table(
    "budgets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("scope", String(16), nullable=False),
    Column("scope_id", String(255), nullable=False),
    Column("period", String(8), nullable=False),
    Column("limit_nanos", BigInteger, nullable=False),
    Column("hard", Boolean, nullable=False),
    Column("alert_at_fraction", Float),
    Column("team_id", String(64)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(255), nullable=False),
    UniqueConstraint("scope", "scope_id", "period", name="uq_budgets_scope_scope_id_period"),
    Index("ix_budgets_team_id", "team_id"),
)

# Append-only. A reservation is two rows with one ``reservation_id``: ``reserve`` (the
# maximum cost, before the upstream call) and ``settle`` (the actual cost). The unique
# constraint makes a settlement happen once, whoever writes it (the process itself or
# recovery). ``reserved_at`` is on both rows: spend counts in the period the request was
# admitted in. ``recovered`` marks settlements written by crash recovery.
spend_ledger = Table(
    "spend_ledger",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("reservation_id", String(32), nullable=False),
    Column("entry", String(8), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("amount_nanos", BigInteger, nullable=False),
    Column("reserved_at", UTCDateTime(), nullable=False),
    Column("key_id", String(64)),
    Column("team_id", String(64)),
    Column("end_user", String(255)),
    Column("model", String(255)),
    Column("instance_id", String(32), nullable=False),
    Column("recovered", Boolean, nullable=False, default=False),
    UniqueConstraint("reservation_id", "entry", name="uq_spend_ledger_reservation_id_entry"),
    Index("ix_spend_ledger_reserved_at", "reserved_at"),
    Index("ix_spend_ledger_instance_id", "instance_id"),
)

# Live gateway processes. A row whose heartbeat is stale, or a missing row, means the
# process is gone and its open reservations are recovered.
spend_instances = Table(
    "spend_instances",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
)

# One requests-per-minute / tokens-per-minute limit per key or team (model limits come
# from keel.yaml). NULL rpm or tpm: that kind is not limited. ``team_id`` is the team
# that owns the limit (the team itself, a key's team), NULL for a key of no team.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("scope", String(16), nullable=False),
    Column("scope_id", String(255), nullable=False),
    Column("rpm", BigInteger),
    Column("tpm", BigInteger),
    Column("team_id", String(64)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(255), nullable=False),
    UniqueConstraint("scope", "scope_id", name="uq_rate_limits_scope_scope_id"),
    Index("ix_rate_limits_team_id", "team_id"),
)
