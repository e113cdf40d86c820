"""The prompt registry's tables (created by migration 0006), on the store's shared
``metadata`` so that one schema check covers every package."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from keel.store import UTCDateTime, metadata

prompts = Table(
    "prompts",
    metadata,
    Column("id", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("type", String(8), nullable=False),
    Column("team_id", String(64)),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("id", name="pk_prompts"),
    UniqueConstraint("name", name="uq_prompts_name"),
    Index("ix_prompts_team_id", "team_id"),
)

# Immutable: the migration adds triggers that refuse UPDATE and DELETE.
prompt_versions = Table(
    "prompt_versions",
    metadata,
    Column("prompt_id", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("template", JSON, nullable=False),
    Column("variables", JSON, nullable=False),
    Column("model_config", JSON, nullable=False),
    Column("commit_message", Text, nullable=False),
    Column("author", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("prompt_id", "version", name="pk_prompt_versions"),
    ForeignKeyConstraint(["prompt_id"], ["prompts.id"], name="fk_prompt_versions_prompt_id_prompts"),
)

prompt_labels = Table(
    "prompt_labels",
    metadata,
    Column("prompt_id", String(32), nullable=False),
    Column("label", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("protected", Boolean, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(255), nullable=False),
    PrimaryKeyConstraint("prompt_id", "label", name="pk_prompt_labels"),
    ForeignKeyConstraint(
        ["prompt_id", "version"],
        ["prompt_versions.prompt_id", "prompt_versions.version"],
        name="fk_prompt_labels_prompt_id_prompt_versions",
    ),
)

# Every label move, in order (append-only): what ``rollback`` walks back through.
prompt_label_history = Table(
    "prompt_label_history",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), nullable=False, autoincrement=True),
    Column("prompt_id", String(32), nullable=False),
    Column("label", String(64), nullable=False),
    Column("from_version", Integer),
    Column("to_version", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(255), nullable=False),
    PrimaryKeyConstraint("id", name="pk_prompt_label_history"),
    Index("ix_prompt_label_history_prompt_id", "prompt_id", "label"),
)
