"""request_log: one row per client request the gateway handled.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_INDEXED = ("created_at", "requested_model", "status", "key_id", "team_id")


def upgrade() -> None:
    # Frozen copy of the table as this revision created it: later changes to
    # keel.store._tables must come with a new revision, not an edit here.
    op.create_table(
        "request_log",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("endpoint", sa.String(32), nullable=False),
        sa.Column("requested_model", sa.String(255), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("route", sa.String(255)),
        sa.Column("provider", sa.String(255)),
        sa.Column("deployment", sa.String(255)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_type", sa.String(64)),
        sa.Column("error_message", sa.Text()),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("ttft_ms", sa.Float()),
        sa.Column("input_tokens", sa.Integer()),
        sa.Column("cached_input_tokens", sa.Integer()),
        sa.Column("output_tokens", sa.Integer()),
        sa.Column("usage_source", sa.String(16)),
        sa.Column("key_id", sa.String(64)),
        sa.Column("team_id", sa.String(64)),
        sa.Column("end_user", sa.String(255)),
        sa.Column("request_body", sa.Text()),
        sa.Column("response_body", sa.Text()),
        sa.Column("body_truncated", sa.Boolean(), nullable=False),
        sa.Column("extra", sa.JSON()),
        sa.PrimaryKeyConstraint("id", name="pk_request_log"),
    )
    for column in _INDEXED:
        op.create_index(f"ix_request_log_{column}", "request_log", [column])


def downgrade() -> None:
    for column in _INDEXED:
        op.drop_index(f"ix_request_log_{column}", table_name="request_log")
    op.drop_table("request_log")
