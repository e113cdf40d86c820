"""The store backend's table (created by migration 0005)."""

from __future__ import annotations

from sqlalchemy import Column, Index, LargeBinary, String, Table

from keel.store import UTCDateTime, metadata

# Entries by exact key; ``partition`` and ``embedding`` (float32 bytes) index the entry
# for the semantic cache. Expired rows are deleted by the backend's periodic sweep.
response_cache = Table(
    "response_cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("route", String(255), nullable=False),
    Column("partition", String(64)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("entry", LargeBinary, nullable=False),
    Column("embedding", LargeBinary),
    Index("ix_response_cache_partition", "partition"),
    Index("ix_response_cache_expires_at", "expires_at"),
)
