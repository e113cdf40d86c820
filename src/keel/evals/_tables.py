"""The evaluation harness's tables (created by migration 0011), on the store's shared
``metadata``.

``eval_runs`` holds one row per run: its suite, the resolved matrix (``config``), its
status and, once analysed, the summary the reports and ``keel eval list/show`` read.
``eval_results`` holds one row per cell (case × variant × repeat), written as cells
finish so an interrupted run resumes where it stopped. ``cache_key`` identifies what
produced an output (case content, resolved prompt version, model, parameters, repeat
index): a later run with the same key reuses the output instead of calling the model.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
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

eval_runs = Table(
    "eval_runs",
    metadata,
    Column("id", String(32), nullable=False),
    Column("suite", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("status", String(16), nullable=False),
    Column("config", JSON, nullable=False),
    Column("summary", JSON),
    Column("cost_nanos", BigInteger, nullable=False, default=0),
    Column("gate_passed", Boolean),
    Column("note", Text),
    PrimaryKeyConstraint("id", name="pk_eval_runs"),
    Index("ix_eval_runs_created_at", "created_at"),
    Index("ix_eval_runs_suite", "suite"),
)

eval_results = Table(
    "eval_results",
    metadata,
    Column("run_id", String(32), nullable=False),
    Column("case_id", String(255), nullable=False),
    Column("variant", String(255), nullable=False),
    Column("repeat", Integer, nullable=False),
    Column("cache_key", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("output", JSON, nullable=False),
    Column("scores", JSON, nullable=False),
    Column("cost_nanos", BigInteger, nullable=False, default=0),
    Column("latency_ms", Float),
    Column("request_id", String(64)),
    Column("error", Text),
    PrimaryKeyConstraint("run_id", "case_id", "variant", "repeat", name="pk_eval_results"),
    Index("ix_eval_results_cache_key", "cache_key"),
)
