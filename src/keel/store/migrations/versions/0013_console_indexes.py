"""request_log: covering indexes for the console's aggregates.

The console sums cost, counts errors and cache hits, and reads latencies over a time
range, for the whole organisation or one team, grouped by team, key, model or end user.
With every such column in the index, a month of traffic is one index range scan; the
rows themselves (with their request and response bodies) are never read.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

_COVERED = [
    "key_id",
    "requested_model",
    "end_user",
    "status",
    "error_type",
    "cache_status",
    "cost_nanos",
    "cost_saved_nanos",
    "latency_ms",
]


# Guard decisions are in a JSON column no B-tree can hold: a partial index lists the
# requests a guard flagged, redacted or blocked (a few percent), so counting them reads
# that index only. The console's queries repeat this condition word for word, which is
# what lets SQLite see that the index applies.
GUARD_TRIGGERED = {
    "sqlite": (
        "json_extract(guards, '$.input.decision') IN ('flag', 'redact', 'block') "
        "OR json_extract(guards, '$.output.decision') IN ('flag', 'redact', 'block')"
    ),
    "postgresql": (
        "(guards -> 'input' ->> 'decision') IN ('flag', 'redact', 'block') "
        "OR (guards -> 'output' ->> 'decision') IN ('flag', 'redact', 'block')"
    ),
}


def upgrade() -> None:
    op.create_index("ix_request_log_console_time", "request_log", ["created_at", "team_id", *_COVERED])
    op.create_index("ix_request_log_console_team", "request_log", ["team_id", "created_at", *_COVERED])
    op.create_index(
        "ix_request_log_guard_triggers",
        "request_log",
        ["created_at", "team_id"],
        sqlite_where=sa.text(GUARD_TRIGGERED["sqlite"]),
        postgresql_where=sa.text(GUARD_TRIGGERED["postgresql"]),
    )


def downgrade() -> None:
    op.drop_index("ix_request_log_guard_triggers", table_name="request_log")
    op.drop_index("ix_request_log_console_team", table_name="request_log")
    op.drop_index("ix_request_log_console_time", table_name="request_log")
