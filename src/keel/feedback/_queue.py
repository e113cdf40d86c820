"""Annotation queues: a fixed sample of logged chat requests, assigned to reviewers who
score, correct or pick; their work is stored as feedback (``source = "review"``) and
their agreement reported per score.

A queue's sample is chosen once, when it is created, by a hash of each request id and
the seed (the same log and seed give the same sample); only requests whose prompt and
answer can be shown (logged bodies, plain text messages) are eligible.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from keel.core import InvalidRequest, NotFound
from keel.feedback._agreement import Agreement, Value, agreement
from keel.feedback._bodies import CHAT_ENDPOINT, answer_text, json_object, prompt_messages
from keel.feedback._input import FeedbackInput
from keel.feedback._store import Feedback, FeedbackStore, Giver
from keel.feedback._tables import annotation_assignments, annotation_items, annotation_queues, feedback
from keel.store import request_log


@dataclass(frozen=True, slots=True)
class Queue:
    id: str
    name: str
    created_at: datetime
    created_by: str
    team_id: str | None
    filters: dict[str, Any]
    instructions: str | None
    reviewers_per_item: int
    items: int


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One request to review: what was asked and answered."""

    queue_id: str
    request_id: str
    position: int
    messages: list[dict[str, str]]
    answer: str


@dataclass(frozen=True, slots=True)
class QueueStatus:
    queue: Queue
    assigned: int  # assignments (item × reviewer)
    done: int
    unassigned_items: int
    reviewers: dict[str, dict[str, int]]  # reviewer -> {"assigned", "done"}
    agreement: list[Agreement] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue.name,
            "id": self.queue.id,
            "items": self.queue.items,
            "reviewers_per_item": self.queue.reviewers_per_item,
            "assigned": self.assigned,
            "done": self.done,
            "unassigned_items": self.unassigned_items,
            "reviewers": self.reviewers,
            "agreement": [a.to_json() for a in self.agreement],
        }


def create_queue(
    engine: Engine,
    name: str,
    *,
    size: int,
    created_by: str = "cli",
    route: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    team_id: str | None = None,
    without_feedback: bool = False,
    reviewers_per_item: int = 1,
    instructions: str | None = None,
    seed: int = 0,
) -> Queue:
    """A new queue of ``size`` (at most) successful chat requests matching the filters."""
    if size < 1:
        raise InvalidRequest(f"size must be at least 1, not {size}", param="size")
    if reviewers_per_item < 1:
        raise InvalidRequest("reviewers_per_item must be at least 1", param="reviewers_per_item")
    if not name.strip():
        raise InvalidRequest("a queue needs a name", param="name")
    query = select(request_log.c.id, request_log.c.request_body, request_log.c.response_body).where(
        request_log.c.endpoint == CHAT_ENDPOINT,
        request_log.c.status == 200,
        request_log.c.body_truncated.is_(False),
    )
    if route is not None:
        query = query.where(request_log.c.route == route)
    if since is not None:
        query = query.where(request_log.c.created_at >= since)
    if until is not None:
        query = query.where(request_log.c.created_at < until)
    if team_id is not None:
        query = query.where(request_log.c.team_id == team_id)
    if without_feedback:
        query = query.where(~select(feedback.c.id).where(feedback.c.request_id == request_log.c.id).exists())
    with engine.connect() as connection:
        if connection.execute(select(annotation_queues.c.id).where(annotation_queues.c.name == name)).first():
            raise InvalidRequest(f"a queue named {name!r} exists already", param="name")
        rows = connection.execution_options(yield_per=500).execute(query)
        eligible = (row.id for row in rows if _reviewable(row.request_body, row.response_body))
        chosen = heapq.nsmallest(size, eligible, key=lambda rid: _rank(seed, rid))
    if not chosen:
        raise InvalidRequest("no logged chat requests with reviewable bodies match these filters")
    chosen.sort()  # request ids are time-ordered: review in the order they happened
    queue_id = f"q_{time.time_ns():x}{os.urandom(3).hex()}"
    filters = {
        "route": route,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "team_id": team_id,
        "without_feedback": without_feedback,
        "size": size,
        "seed": seed,
    }
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            annotation_queues.insert().values(
                id=queue_id,
                name=name,
                created_at=now,
                created_by=created_by,
                team_id=team_id,
                filters=filters,
                instructions=instructions,
                reviewers_per_item=reviewers_per_item,
            )
        )
        connection.execute(
            annotation_items.insert(),
            [{"queue_id": queue_id, "request_id": rid, "position": i} for i, rid in enumerate(chosen)],
        )
    return get_queue(engine, name)


def _reviewable(request_body: str | None, response_body: str | None) -> bool:
    return prompt_messages(json_object(request_body)) is not None and bool(
        answer_text(json_object(response_body))
    )


def _rank(seed: int, request_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{request_id}".encode()).digest()


def get_queue(engine: Engine, name: str) -> Queue:
    """The queue with this name (or id)."""
    query = select(annotation_queues).where(
        (annotation_queues.c.name == name) | (annotation_queues.c.id == name)
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
        if row is None:
            raise NotFound(f"no annotation queue {name!r}")
        items = connection.execute(
            select(func.count()).select_from(annotation_items).where(annotation_items.c.queue_id == row.id)
        ).scalar_one()
    return Queue(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        created_by=row.created_by,
        team_id=row.team_id,
        filters=row.filters,
        instructions=row.instructions,
        reviewers_per_item=row.reviewers_per_item,
        items=items,
    )


def assign(engine: Engine, name: str, reviewers: list[str]) -> int:
    """Give every item of the queue ``reviewers_per_item`` distinct reviewers from
    ``reviewers``, spreading the load evenly (items already assigned keep theirs and
    count towards it). Returns how many assignments were made."""
    reviewers = list(dict.fromkeys(r.strip() for r in reviewers if r.strip()))
    if not reviewers:
        raise InvalidRequest("name at least one reviewer", param="reviewers")
    queue = get_queue(engine, name)
    if len(reviewers) < queue.reviewers_per_item:
        raise InvalidRequest(
            f"queue {queue.name!r} needs {queue.reviewers_per_item} reviewers per item; "
            f"only {len(reviewers)} given",
            param="reviewers",
        )
    with engine.connect() as connection:
        items = connection.execute(
            select(annotation_items.c.request_id)
            .where(annotation_items.c.queue_id == queue.id)
            .order_by(annotation_items.c.position)
        ).scalars()
        existing = connection.execute(
            select(annotation_assignments.c.request_id, annotation_assignments.c.reviewer).where(
                annotation_assignments.c.queue_id == queue.id
            )
        ).all()
        request_ids = list(items)
    have: dict[str, set[str]] = defaultdict(set)
    load: dict[str, int] = dict.fromkeys(reviewers, 0)
    for request_id, reviewer in existing:
        have[request_id].add(reviewer)
        if reviewer in load:
            load[reviewer] += 1
    now = datetime.now(UTC)
    new: list[dict[str, Any]] = []
    for request_id in request_ids:
        missing = queue.reviewers_per_item - len(have[request_id])
        candidates = sorted((r for r in reviewers if r not in have[request_id]), key=lambda r: (load[r], r))
        for reviewer in candidates[: max(missing, 0)]:
            load[reviewer] += 1
            have[request_id].add(reviewer)
            new.append(
                {"queue_id": queue.id, "request_id": request_id, "reviewer": reviewer, "assigned_at": now}
            )
    if new:
        with engine.begin() as connection:
            connection.execute(annotation_assignments.insert(), new)
    return len(new)


def next_items(engine: Engine, name: str, reviewer: str, *, limit: int = 10) -> list[ReviewItem]:
    """The reviewer's open items in this queue, first assigned first."""
    queue = get_queue(engine, name)
    query = (
        select(
            annotation_items.c.request_id,
            annotation_items.c.position,
            request_log.c.request_body,
            request_log.c.response_body,
        )
        .select_from(
            annotation_assignments.join(
                annotation_items,
                (annotation_items.c.queue_id == annotation_assignments.c.queue_id)
                & (annotation_items.c.request_id == annotation_assignments.c.request_id),
            ).join(request_log, request_log.c.id == annotation_assignments.c.request_id)
        )
        .where(
            annotation_assignments.c.queue_id == queue.id,
            annotation_assignments.c.reviewer == reviewer,
            annotation_assignments.c.feedback_id.is_(None),
        )
        .order_by(annotation_items.c.position)
        .limit(limit)
    )
    out: list[ReviewItem] = []
    with engine.connect() as connection:
        for row in connection.execute(query):
            messages = prompt_messages(json_object(row.request_body)) or []
            answer = answer_text(json_object(row.response_body)) or ""
            out.append(ReviewItem(queue.id, row.request_id, row.position, messages, answer))
    return out


def submit_review(engine: Engine, name: str, reviewer: str, review: FeedbackInput) -> Feedback:
    """Store ``reviewer``'s score / correction / pick for one of their items. Reviewing
    the same item again replaces the earlier review."""
    queue = get_queue(engine, name)
    where = (
        (annotation_assignments.c.queue_id == queue.id)
        & (annotation_assignments.c.request_id == review.request_id)
        & (annotation_assignments.c.reviewer == reviewer)
    )
    with engine.connect() as connection:
        assignment = connection.execute(select(annotation_assignments).where(where)).first()
    if assignment is None:
        raise NotFound(
            f"request {review.request_id!r} is not assigned to {reviewer!r} in queue {queue.name!r}",
            param="request_id",
        )
    if assignment.feedback_id is not None:
        with engine.begin() as connection:
            connection.execute(feedback.delete().where(feedback.c.id == assignment.feedback_id))
            connection.execute(annotation_assignments.update().where(where).values(feedback_id=None))
    stored, _ = FeedbackStore(engine).submit(
        Giver(),
        review,
        source="review",
        scope=f"review:{queue.id}",
        reviewer=reviewer,
        queue_id=queue.id,
    )
    with engine.begin() as connection:
        connection.execute(annotation_assignments.update().where(where).values(feedback_id=stored.id))
    return stored


def queue_status(engine: Engine, name: str) -> QueueStatus:
    """Progress per reviewer and, per score, how far reviewers agree."""
    queue = get_queue(engine, name)
    with engine.connect() as connection:
        assignments = connection.execute(
            select(
                annotation_assignments.c.request_id,
                annotation_assignments.c.reviewer,
                annotation_assignments.c.feedback_id,
            ).where(annotation_assignments.c.queue_id == queue.id)
        ).all()
        reviews = connection.execute(
            select(feedback.c.request_id, feedback.c.reviewer, feedback.c.score).where(
                feedback.c.queue_id == queue.id, feedback.c.source == "review"
            )
        ).all()
    reviewers: dict[str, dict[str, int]] = defaultdict(lambda: {"assigned": 0, "done": 0})
    assigned_items: set[str] = set()
    for request_id, reviewer, feedback_id in assignments:
        assigned_items.add(request_id)
        reviewers[reviewer]["assigned"] += 1
        reviewers[reviewer]["done"] += feedback_id is not None
    by_score: dict[str, dict[str, dict[str, Value]]] = defaultdict(lambda: defaultdict(dict))
    for request_id, reviewer, score in reviews:
        for score_name, value in (score or {}).items():
            by_score[score_name][request_id][reviewer] = value
    return QueueStatus(
        queue=queue,
        assigned=len(assignments),
        done=sum(1 for a in assignments if a.feedback_id is not None),
        unassigned_items=queue.items - len(assigned_items),
        reviewers={name: dict(counts) for name, counts in sorted(reviewers.items())},
        agreement=[agreement(score_name, ratings) for score_name, ratings in sorted(by_score.items())],
    )
