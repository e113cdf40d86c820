"""evals: runs of the evaluation harness and their per-cell results.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("suite", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON()),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("gate_passed", sa.Boolean()),
        sa.Column("note", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_eval_runs"),
    )
    op.create_index("ix_eval_runs_created_at", "eval_runs", ["created_at"])
    op.create_index("ix_eval_runs_suite", "eval_runs", ["suite"])
    op.create_table(
        "eval_results",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(255), nullable=False),
        sa.Column("variant", sa.String(255), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("request_id", sa.String(64)),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("run_id", "case_id", "variant", "repeat", name="pk_eval_results"),
    )
    op.create_index("ix_eval_results_cache_key", "eval_results", ["cache_key"])


def downgrade() -> None:
    op.drop_index("ix_eval_results_cache_key", table_name="eval_results")
    op.drop_table("eval_results")
    op.drop_index("ix_eval_runs_suite", table_name="eval_runs")
    op.drop_index("ix_eval_runs_created_at", table_name="eval_runs")
    op.drop_table("eval_runs")
