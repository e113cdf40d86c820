"""request_log: the guardrail verdicts of each request.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("request_log", sa.Column("guards", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("request_log") as batch:
        batch.drop_column("guards")
