"""The access tables: teams and their virtual keys (registered on ``keel.store.metadata``;
migration 0003 creates them)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Table

from keel.store import UTCDateTime, metadata

teams = Table(
    "teams",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("metadata", JSON),
    # The guard policy (a name under guards.policies in keel.yaml) for the team's keys that
    # name none; NULL: the route's. Migration 0010.
    Column("guard_policy", String(64)),
)

# A key's plaintext is never stored: only its sha256 (to find it) and its first characters
# (so that people can tell their keys apart in lists).
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    # NULL only for organisation-wide admin keys. No ON DELETE: a team with keys cannot go.
    Column("team_id", String(64), ForeignKey("teams.id")),
    Column("name", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Who created it, as the audit log names them; and the creating key's id, which is what
    # makes a key "its own" for a member (NULL when made at the CLI).
    Column("created_by", String(255), nullable=False),
    Column("created_by_key_id", String(64)),
    Column("expires_at", UTCDateTime()),
    # May lie in the future: a rotated key stays valid for its grace period.
    Column("revoked_at", UTCDateTime()),
    Column("allowed_models", JSON),
    Column("last_rotated_from", String(64)),
    # Overrides the team's and the route's guard policy; NULL: the team's (migration 0010).
    Column("guard_policy", String(64)),
    Index("ix_api_keys_team_id", "team_id"),
    Index("ix_api_keys_created_by_key_id", "created_by_key_id"),
)
