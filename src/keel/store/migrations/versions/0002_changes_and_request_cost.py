"""keel_changes (what changed, for processes that cache runtime objects) and the
request log's cost, cache and prompt columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_NEW_COLUMNS = (
    ("cost_nanos", sa.BigInteger()),
    ("cache_status", sa.String(16)),
    ("cost_saved_nanos", sa.BigInteger()),
    ("prompt_name", sa.String(255)),
    ("prompt_version", sa.Integer()),
)


def upgrade() -> None:
    op.create_table(
        "keel_changes",
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("topic", name="pk_keel_changes"),
    )
    for name, type_ in _NEW_COLUMNS:
        op.add_column("request_log", sa.Column(name, type_))


def downgrade() -> None:
    with op.batch_alter_table("request_log") as batch:
        for name, _ in reversed(_NEW_COLUMNS):
            batch.drop_column(name)
    op.drop_table("keel_changes")
