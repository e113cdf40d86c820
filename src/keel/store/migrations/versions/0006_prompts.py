"""prompts: prompts, their immutable versions, movable labels and the labels' history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

# Versions are immutable and the label history is append-only: the database itself
# refuses to rewrite them.
_APPEND_ONLY = ("prompt_versions", "prompt_label_history")


def upgrade() -> None:
    op.create_table(
        "prompts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("team_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prompts"),
        sa.UniqueConstraint("name", name="uq_prompts_name"),
    )
    op.create_index("ix_prompts_team_id", "prompts", ["team_id"])
    op.create_table(
        "prompt_versions",
        sa.Column("prompt_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("template", sa.JSON(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("model_config", sa.JSON(), nullable=False),
        sa.Column("commit_message", sa.Text(), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("prompt_id", "version", name="pk_prompt_versions"),
        sa.ForeignKeyConstraint(["prompt_id"], ["prompts.id"], name="fk_prompt_versions_prompt_id_prompts"),
    )
    op.create_table(
        "prompt_labels",
        sa.Column("prompt_id", sa.String(32), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("prompt_id", "label", name="pk_prompt_labels"),
        sa.ForeignKeyConstraint(
            ["prompt_id", "version"],
            ["prompt_versions.prompt_id", "prompt_versions.version"],
            name="fk_prompt_labels_prompt_id_prompt_versions",
        ),
    )
    op.create_table(
        "prompt_label_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True),
        sa.Column("prompt_id", sa.String(32), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("from_version", sa.Integer()),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prompt_label_history"),
    )
    op.create_index("ix_prompt_label_history_prompt_id", "prompt_label_history", ["prompt_id", "label"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION keel_prompts_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
        for table in _APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION keel_prompts_append_only()"
            )
    else:
        for table in _APPEND_ONLY:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION keel_prompts_append_only()")
    op.drop_table("prompt_label_history")
    op.drop_table("prompt_labels")
    op.drop_table("prompt_versions")
    op.drop_table("prompts")
