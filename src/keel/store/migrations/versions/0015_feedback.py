"""feedback: feedback on logged requests, and annotation queues for reviewers.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("client_id", sa.String(255)),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("team_id", sa.String(64)),
        sa.Column("end_user", sa.String(255)),
        sa.Column("reviewer", sa.String(255)),
        sa.Column("queue_id", sa.String(32)),
        sa.Column("score", sa.JSON()),
        sa.Column("score_value", sa.Float()),
        sa.Column("correction", sa.Text()),
        sa.Column("chosen", sa.Text()),
        sa.Column("chosen_request_id", sa.String(64)),
        sa.Column("rejected", sa.Text()),
        sa.Column("rejected_request_id", sa.String(64)),
        sa.Column("comment", sa.Text()),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint("scope", "client_id", name="uq_feedback_scope_client_id"),
    )
    op.create_index("ix_feedback_request_id", "feedback", ["request_id"])
    op.create_index("ix_feedback_created_at", "feedback", ["created_at"])
    op.create_index("ix_feedback_queue_id", "feedback", ["queue_id"])
    op.create_table(
        "annotation_queues",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("team_id", sa.String(64)),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("instructions", sa.Text()),
        sa.Column("reviewers_per_item", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_annotation_queues"),
        sa.UniqueConstraint("name", name="uq_annotation_queues_name"),
    )
    op.create_table(
        "annotation_items",
        sa.Column("queue_id", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("queue_id", "request_id", name="pk_annotation_items"),
    )
    op.create_table(
        "annotation_assignments",
        sa.Column("queue_id", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("reviewer", sa.String(255), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("feedback_id", sa.String(32)),
        sa.PrimaryKeyConstraint("queue_id", "request_id", "reviewer", name="pk_annotation_assignments"),
    )
    op.create_index("ix_annotation_assignments_reviewer", "annotation_assignments", ["reviewer"])


def downgrade() -> None:
    op.drop_index("ix_annotation_assignments_reviewer", table_name="annotation_assignments")
    op.drop_table("annotation_assignments")
    op.drop_table("annotation_items")
    op.drop_table("annotation_queues")
    op.drop_index("ix_feedback_queue_id", table_name="feedback")
    op.drop_index("ix_feedback_created_at", table_name="feedback")
    op.drop_index("ix_feedback_request_id", table_name="feedback")
    op.drop_table("feedback")
