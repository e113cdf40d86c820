"""request_log: an index for per-prompt-version statistics.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_request_log_prompt_name", "request_log", ["prompt_name", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_request_log_prompt_name", table_name="request_log")
