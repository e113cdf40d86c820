"""The feedback tables (created by migration 0015), on the store's shared ``metadata``.

``feedback`` holds one row per piece of feedback on a logged request: from the API
(``source = "api"``, given by a key and optionally naming its ``end_user``) or from a
reviewer working through an annotation queue (``source = "review"``). ``scope`` +
``client_id`` is the idempotency key: ``scope`` is the giving key's id (``""`` without
access control, ``review:QUEUE`` for reviews), ``client_id`` the id the client chose.

``annotation_queues`` / ``annotation_items`` / ``annotation_assignments``: a queue is a
fixed sample of requests; each item is assigned to one or more reviewers, and an
assignment is done once its reviewer's feedback row exists (``feedback_id``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from keel.store import UTCDateTime, metadata

feedback = Table(
    "feedback",
    metadata,
    Column("id", String(32), nullable=False),
    Column("scope", String(128), nullable=False),
    Column("client_id", String(255)),
    Column("request_id", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("source", String(16), nullable=False),
    Column("key_id", String(64)),
    Column("team_id", String(64)),
    Column("end_user", String(255)),
    Column("reviewer", String(255)),
    Column("queue_id", String(32)),
    # {"thumbs": "up"} | {"rating": 4} | {"name": number or category, ...}
    Column("score", JSON),
    # thumbs up 1 / down 0, rating (r - 1) / 4: what "well rated" means to the exports.
    Column("score_value", Float),
    Column("correction", Text),
    Column("chosen", Text),
    Column("chosen_request_id", String(64)),
    Column("rejected", Text),
    Column("rejected_request_id", String(64)),
    Column("comment", Text),
    # SHA-256 of the normalised body: the same client id with another body is a conflict.
    Column("body_hash", String(64), nullable=False),
    PrimaryKeyConstraint("id", name="pk_feedback"),
    UniqueConstraint("scope", "client_id", name="uq_feedback_scope_client_id"),
    Index("ix_feedback_request_id", "request_id"),
    Index("ix_feedback_created_at", "created_at"),
    Index("ix_feedback_queue_id", "queue_id"),
)

annotation_queues = Table(
    "annotation_queues",
    metadata,
    Column("id", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("team_id", String(64)),
    Column("filters", JSON, nullable=False),
    Column("instructions", Text),
    Column("reviewers_per_item", Integer, nullable=False),
    PrimaryKeyConstraint("id", name="pk_annotation_queues"),
    UniqueConstraint("name", name="uq_annotation_queues_name"),
)

annotation_items = Table(
    "annotation_items",
    metadata,
    Column("queue_id", String(32), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    PrimaryKeyConstraint("queue_id", "request_id", name="pk_annotation_items"),
)

annotation_assignments = Table(
    "annotation_assignments",
    metadata,
    Column("queue_id", String(32), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("reviewer", String(255), nullable=False),
    Column("assigned_at", UTCDateTime(), nullable=False),
    Column("feedback_id", String(32)),
    PrimaryKeyConstraint("queue_id", "request_id", "reviewer", name="pk_annotation_assignments"),
    Index("ix_annotation_assignments_reviewer", "reviewer"),
)
