"""release: model gate verdicts and the runtime deployments of promoted models.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "model_gates",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("baseline_version", sa.Integer()),
        sa.Column("suite", sa.String(255), nullable=False),
        sa.Column("eval_run_id", sa.String(32)),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_gates"),
    )
    op.create_index("ix_model_gates_model", "model_gates", ["model", "version", "at"])
    op.create_table(
        "model_deployments",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("route", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("provider", sa.String(255)),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("previous_id", sa.String(32)),
        sa.Column("previous_alias_version", sa.Integer()),
        sa.Column("gate_id", sa.String(32)),
        sa.Column("note", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_model_deployments"),
    )
    op.create_index("ix_model_deployments_route", "model_deployments", ["route", "state"])


def downgrade() -> None:
    op.drop_index("ix_model_deployments_route", table_name="model_deployments")
    op.drop_table("model_deployments")
    op.drop_index("ix_model_gates_model", table_name="model_gates")
    op.drop_table("model_gates")
