"""spend: prices, budgets, the spend ledger and the live gateway instances.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "prices",
        sa.Column("id", _ID, autoincrement=True),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("token_type", sa.String(16), nullable=False),
        sa.Column("usd_per_million", sa.String(40), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prices"),
    )
    op.create_index("ix_prices_model", "prices", ["model"])
    op.create_table(
        "budgets",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_id", sa.String(255), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("limit_nanos", sa.BigInteger(), nullable=False),
        sa.Column("hard", sa.Boolean(), nullable=False),
        sa.Column("alert_at_fraction", sa.Float()),
        sa.Column("team_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_budgets"),
        sa.UniqueConstraint("scope", "scope_id", "period", name="uq_budgets_scope_scope_id_period"),
    )
    op.create_index("ix_budgets_team_id", "budgets", ["team_id"])
    op.create_table(
        "spend_ledger",
        sa.Column("id", _ID, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reservation_id", sa.String(32), nullable=False),
        sa.Column("entry", sa.String(8), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("amount_nanos", sa.BigInteger(), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("team_id", sa.String(64)),
        sa.Column("end_user", sa.String(255)),
        sa.Column("model", sa.String(255)),
        sa.Column("instance_id", sa.String(32), nullable=False),
        sa.Column("recovered", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_spend_ledger"),
        sa.UniqueConstraint("reservation_id", "entry", name="uq_spend_ledger_reservation_id_entry"),
    )
    op.create_index("ix_spend_ledger_reserved_at", "spend_ledger", ["reserved_at"])
    op.create_index("ix_spend_ledger_instance_id", "spend_ledger", ["instance_id"])
    op.create_table(
        "spend_instances",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_spend_instances"),
    )
    # The ledger is append-only, like the audit log: the database refuses to rewrite it.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION keel_spend_ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'spend_ledger is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER spend_ledger_append_only BEFORE UPDATE OR DELETE ON spend_ledger "
            "FOR EACH ROW EXECUTE FUNCTION keel_spend_ledger_is_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER spend_ledger_no_{event.lower()} BEFORE {event} ON spend_ledger "
                "BEGIN SELECT RAISE(ABORT, 'spend_ledger is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER spend_ledger_append_only ON spend_ledger")
        op.execute("DROP FUNCTION keel_spend_ledger_is_append_only()")
    op.drop_table("spend_instances")
    op.drop_table("spend_ledger")
    op.drop_index("ix_budgets_team_id", "budgets")
    op.drop_table("budgets")
    op.drop_index("ix_prices_model", "prices")
    op.drop_table("prices")
