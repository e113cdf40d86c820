"""The release tables (created by migration 0016), on the store's shared ``metadata``.

``model_gates``: one row per gate run on a registered model version (``keel models
gate``): the eval suite, its run, the baseline version it was compared with and the
verdict. Promotion reads the newest row of a version.

``model_deployments``: the runtime deployments that promotion adds to routes on top of
the configuration. A route has at most one ``canary`` (taking ``share`` of its traffic)
and at most one ``live`` one (replacing the configured deployments); ``retired`` rows
are history. ``previous_id`` is the live row a live one replaced (None: the
configuration), so a rollback can put it back; ``previous_alias_version`` is where the
model's ``production`` alias pointed before a rollout moved it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from keel.store import UTCDateTime, metadata

model_gates = Table(
    "model_gates",
    metadata,
    Column("id", String(32), nullable=False),
    Column("model", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("baseline_version", Integer),
    Column("suite", String(255), nullable=False),
    Column("eval_run_id", String(32)),
    Column("passed", Boolean, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(255), nullable=False),
    # The gate's checks ({"rule", "passed", "detail"} each) and any note (a stopped run).
    Column("detail", JSON, nullable=False),
    PrimaryKeyConstraint("id", name="pk_model_gates"),
    Index("ix_model_gates_model", "model", "version", "at"),
)

model_deployments = Table(
    "model_deployments",
    metadata,
    Column("id", String(32), nullable=False),
    Column("route", String(255), nullable=False),
    # The deployment's name in the gateway and the request log.
    Column("name", String(255), nullable=False),
    Column("model", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    # The model directory a local provider loads (or the upstream model id).
    Column("path", Text, nullable=False),
    # The configured provider that serves it; None: Keel's own local provider.
    Column("provider", String(255)),
    Column("share", Float, nullable=False),
    Column("state", String(16), nullable=False),  # canary | live | retired
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("previous_id", String(32)),
    Column("previous_alias_version", Integer),
    Column("gate_id", String(32)),
    # Why it was retired (rolled back, replaced ...).
    Column("note", Text),
    PrimaryKeyConstraint("id", name="pk_model_deployments"),
    Index("ix_model_deployments_route", "route", "state"),
)
