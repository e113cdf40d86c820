"""monitor: per-bucket aggregates of the request log's signals, embedding samples, the
aggregation watermark, drift results, and classic-ML prediction logs.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None


def _id() -> sa.Column[int]:
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "monitor_buckets",
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("route", sa.String(255), nullable=False),
        sa.Column("prompt", sa.String(255), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("signal", sa.String(64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Float()),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint(
            "bucket_start", "route", "prompt", "model", "signal", name="pk_monitor_buckets"
        ),
    )
    op.create_index("ix_monitor_buckets_route", "monitor_buckets", ["route", "bucket_start"])
    op.create_table(
        "monitor_samples",
        _id(),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("route", sa.String(255), nullable=False),
        sa.Column("prompt", sa.String(255), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("signal", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_samples"),
    )
    op.create_index("ix_monitor_samples_bucket", "monitor_samples", ["bucket_start", "route"])
    op.create_table(
        "monitor_progress",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("aggregated_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("embedder", sa.String(255)),
        sa.PrimaryKeyConstraint("source", name="pk_monitor_progress"),
    )
    op.create_table(
        "monitor_drift",
        _id(),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("route", sa.String(255), nullable=False),
        sa.Column("prompt", sa.String(255), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("signal", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reference_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reference_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_reference", sa.BigInteger(), nullable=False),
        sa.Column("n_current", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Float()),
        sa.Column("p_value", sa.Float()),
        sa.Column("threshold", sa.Float()),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        sa.Column("reference_mean", sa.Float()),
        sa.Column("current_mean", sa.Float()),
        sa.Column("details", sa.JSON()),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_drift"),
    )
    op.create_index("ix_monitor_drift_at", "monitor_drift", ["at"])
    op.create_index("ix_monitor_drift_route", "monitor_drift", ["route", "signal", "at"])
    op.create_table(
        "monitor_predictions",
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("prediction", sa.JSON()),
        sa.Column("confidence", sa.Float()),
        sa.Column("label", sa.JSON()),
        sa.Column("labeled_at", sa.DateTime(timezone=True)),
        sa.Column("team_id", sa.String(64)),
        sa.PrimaryKeyConstraint("model", "id", name="pk_monitor_predictions"),
    )
    op.create_index("ix_monitor_predictions_at", "monitor_predictions", ["model", "at"])
    op.create_table(
        "monitor_features",
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("feature", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("description", sa.Text()),
        sa.PrimaryKeyConstraint("model", "feature", name="pk_monitor_features"),
    )


def downgrade() -> None:
    op.drop_table("monitor_features")
    op.drop_index("ix_monitor_predictions_at", table_name="monitor_predictions")
    op.drop_table("monitor_predictions")
    op.drop_index("ix_monitor_drift_route", table_name="monitor_drift")
    op.drop_index("ix_monitor_drift_at", table_name="monitor_drift")
    op.drop_table("monitor_drift")
    op.drop_table("monitor_progress")
    op.drop_index("ix_monitor_samples_bucket", table_name="monitor_samples")
    op.drop_table("monitor_samples")
    op.drop_index("ix_monitor_buckets_route", table_name="monitor_buckets")
    op.drop_table("monitor_buckets")
