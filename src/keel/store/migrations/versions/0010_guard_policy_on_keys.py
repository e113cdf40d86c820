"""teams and api_keys: the guard policy each applies to its requests.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("teams", sa.Column("guard_policy", sa.String(64)))
    op.add_column("api_keys", sa.Column("guard_policy", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("guard_policy")
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("guard_policy")
