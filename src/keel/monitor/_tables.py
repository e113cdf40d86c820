"""Monitoring's tables (created by migration 0014), on the store's shared ``metadata``.

``monitor_buckets``: per time bucket (5 minutes by default), group (route, prompt
version, model) and signal, the pre-aggregated observations: a sparse histogram over the
signal's fixed bins (numeric) or category counts (``counts``), how many observations,
and their sum (for plotting means). Windows add buckets up; no request is read twice.

``monitor_samples``: the reservoir of embedding vectors kept per bucket, group and
signal (float32 bytes), with the request each came from.

``monitor_progress``: up to when each source has been aggregated (the watermark).

``monitor_drift``: the results, a time series: one row per window, group filter and
signal, with the detector's score, p-value, threshold and verdict.

``monitor_predictions`` / ``monitor_features``: classic-ML prediction logs and each
model's feature schema (fixed by its first batch).
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
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from keel.store import UTCDateTime, metadata

monitor_buckets = Table(
    "monitor_buckets",
    metadata,
    Column("bucket_start", UTCDateTime(), nullable=False),
    Column("route", String(255), nullable=False),
    Column("prompt", String(255), nullable=False),
    Column("model", String(255), nullable=False),
    Column("signal", String(64), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("total", Float),
    Column("counts", JSON, nullable=False),
    PrimaryKeyConstraint("bucket_start", "route", "prompt", "model", "signal", name="pk_monitor_buckets"),
    Index("ix_monitor_buckets_route", "route", "bucket_start"),
)

monitor_samples = Table(
    "monitor_samples",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("bucket_start", UTCDateTime(), nullable=False),
    Column("route", String(255), nullable=False),
    Column("prompt", String(255), nullable=False),
    Column("model", String(255), nullable=False),
    Column("signal", String(64), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Index("ix_monitor_samples_bucket", "bucket_start", "route"),
)

monitor_progress = Table(
    "monitor_progress",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("aggregated_until", UTCDateTime(), nullable=False),
    Column("embedder", String(255)),
)

monitor_drift = Table(
    "monitor_drift",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("source", String(32), nullable=False),
    Column("route", String(255), nullable=False),
    Column("prompt", String(255), nullable=False),
    Column("model", String(255), nullable=False),
    Column("signal", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("detector", String(64), nullable=False),
    Column("window_start", UTCDateTime(), nullable=False),
    Column("reference_start", UTCDateTime(), nullable=False),
    Column("reference_end", UTCDateTime(), nullable=False),
    Column("n_reference", BigInteger, nullable=False),
    Column("n_current", BigInteger, nullable=False),
    Column("score", Float),
    Column("p_value", Float),
    Column("threshold", Float),
    Column("drifted", Boolean, nullable=False),
    Column("reference_mean", Float),
    Column("current_mean", Float),
    Column("details", JSON),
    Index("ix_monitor_drift_at", "at"),
    Index("ix_monitor_drift_route", "route", "signal", "at"),
)

monitor_predictions = Table(
    "monitor_predictions",
    metadata,
    Column("model", String(255), nullable=False),
    Column("id", String(255), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("features", JSON, nullable=False),
    Column("prediction", JSON),
    Column("confidence", Float),
    Column("label", JSON),
    Column("labeled_at", UTCDateTime()),
    Column("team_id", String(64)),
    PrimaryKeyConstraint("model", "id", name="pk_monitor_predictions"),
    Index("ix_monitor_predictions_at", "model", "at"),
)

monitor_features = Table(
    "monitor_features",
    metadata,
    Column("model", String(255), nullable=False),
    Column("feature", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("description", Text),
    PrimaryKeyConstraint("model", "feature", name="pk_monitor_features"),
)
