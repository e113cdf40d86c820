"""keel_changes (what changed, for processes that cache runtime objects), the
append-only audit log, and the request log's cost, cache and prompt columns.

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
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(255)),
        sa.Column("team_id", sa.String(64)),
        sa.Column("before", sa.JSON()),
        sa.Column("after", sa.JSON()),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_team_id", "audit_log", ["team_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION keel_audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION keel_audit_log_is_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION keel_audit_log_is_append_only()")
    op.drop_table("audit_log")
    with op.batch_alter_table("request_log") as batch:
        for name, _ in reversed(_NEW_COLUMNS):
            batch.drop_column(name)
    op.drop_table("keel_changes")
