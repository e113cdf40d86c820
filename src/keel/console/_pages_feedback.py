"""Feedback (issue #8): what users and reviewers said about answers, how scores move, and
the annotation queues, with a review form for the signed-in reviewer.

Feedback belongs to its request's team (``feedback.team_id``), so a team's key sees the
feedback on its own requests only. A queue created for a team (``--team``) is that
team's; a queue without a team may hold any team's requests and is for admin keys only.
The reviewer is the signed-in key's name: ``keel data queue assign QUEUE NAME ...``
names reviewers the same way. Reviews are ``keel.feedback.submit_review``: stored as
feedback, reviewing an item again replaces the earlier review.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Text, and_, bindparam, case, cast, func, select, true
from starlette.responses import RedirectResponse, Response

from keel.charts import Series, line_chart, stacked_bar_chart
from keel.console._metrics import bucket_windows, names_of
from keel.console._pages import PageContext, PageResult
from keel.core import InvalidRequest, NotFound
from keel.feedback import (
    FeedbackInput,
    Queue,
    ReviewItem,
    annotation_items,
    annotation_queues,
    answer_text,
    feedback,
    get_queue,
    json_object,
    next_items,
    prompt_messages,
    queue_status,
    submit_review,
)
from keel.store import request_log

RECENT = 50
QUEUES = 50
# Other answers to the same prompt a reviewer may pick between: looked for among this
# many of the queue's items (a queue is a sample of a few hundred requests at most).
_PICK_SCAN = 500
_SNIPPET = 200

f = feedback.c


@dataclass(frozen=True)
class FeedbackRow:
    id: str
    request_id: str
    created_at: Any
    source: str
    who: str
    score: str
    correction: str
    preference: str
    comment: str


@dataclass(frozen=True)
class QueueRow:
    queue: Queue
    assigned: int
    done: int
    agreement: list[Any]
    yours: int  # the viewer's open items


def feedback_page(ctx: PageContext) -> PageResult:
    team_id = ctx.viewer.team_id
    condition = and_(_scope(team_id), f.created_at >= ctx.range.since, f.created_at < ctx.range.until)
    with ctx.engine.connect() as connection:
        names = names_of(connection)
        recent = [
            _row(row, names)
            for row in connection.execute(
                select(feedback).where(condition).order_by(f.created_at.desc(), f.id.desc()).limit(RECENT)
            )
        ]
        totals = connection.execute(_counts().where(condition)).one()
        buckets = _series(connection, team_id, ctx)
        queue_ids = _queue_ids(connection, team_id)
    reviewer = ctx.viewer.principal.name
    rows = []
    for queue_id in queue_ids:
        status = queue_status(ctx.engine, queue_id)
        yours = status.reviewers.get(reviewer, {"assigned": 0, "done": 0})
        open_items = yours["assigned"] - yours["done"]
        rows.append(QueueRow(status.queue, status.assigned, status.done, status.agreement, open_items))
    labels = [ctx.range.label(start) for start, *_ in buckets]
    score_chart = line_chart(
        [Series("mean score", [b[2] for b in buckets])],
        labels,
        title="Mean score (0 to 1: thumbs down 0, up 1; rating r as (r-1)/4)",
        y_format=lambda v: f"{v:.2f}",
        width=560,
        height=220,
    )
    kinds_chart = stacked_bar_chart(
        [
            Series("scores", [b[3] for b in buckets]),
            Series("corrections", [b[4] for b in buckets]),
            Series("preferences", [b[5] for b in buckets]),
        ],
        labels,
        title="Feedback given, by kind",
        y_format=lambda v: f"{v:,.0f}",
        width=560,
        height=220,
    )
    return PageResult(
        "feedback.html",
        {
            "recent": recent,
            "totals": totals,
            "charts": [score_chart, kinds_chart],
            "queues": rows,
            "reviewer": reviewer,
            "names": names,
        },
    )


def _scope(team_id: str | None) -> Any:
    return f.team_id == team_id if team_id is not None else true()


# A missing score is stored as JSON null, not SQL NULL (SQLAlchemy's JSON default): its
# text is "null" on SQLite and PostgreSQL alike.
_has_score = and_(f.score.is_not(None), cast(f.score, Text) != "null")


def _counts() -> Any:
    return select(
        func.count().label("n"),
        func.avg(f.score_value).label("mean"),
        func.sum(case((_has_score, 1), else_=0)).label("scores"),
        func.count(f.correction).label("corrections"),
        func.sum(case((f.chosen.is_not(None) | f.chosen_request_id.is_not(None), 1), else_=0)).label("picks"),
    )


def _series(connection: Connection, team_id: str | None, ctx: PageContext) -> list[tuple[Any, ...]]:
    """(bucket start, count, mean score, scores, corrections, preferences) per chart
    bucket: one small indexed query each, as the console's other series."""
    query = _counts().where(
        _scope(team_id), f.created_at >= bindparam("since"), f.created_at < bindparam("until")
    )
    out = []
    for start, since, until in bucket_windows(ctx.range):
        row = connection.execute(query, {"since": since, "until": until}).one()
        mean = float(row.mean) if row.mean is not None else None
        out.append((start, int(row.n), mean, int(row.scores or 0), int(row.corrections), int(row.picks or 0)))
    return out


def _queue_ids(connection: Connection, team_id: str | None) -> list[str]:
    query = select(annotation_queues.c.id).order_by(annotation_queues.c.created_at.desc()).limit(QUEUES)
    if team_id is not None:
        query = query.where(annotation_queues.c.team_id == team_id)
    return list(connection.execute(query).scalars())


def _row(row: Any, names: dict[str, str]) -> FeedbackRow:
    score = ", ".join(f"{name}: {value}" for name, value in (row.score or {}).items())
    preference = ""
    if row.chosen is not None or row.chosen_request_id is not None:
        chosen = row.chosen_request_id or _snip(row.chosen or "")
        rejected = row.rejected_request_id or _snip(row.rejected or "")
        preference = f"{chosen} over {rejected}"
    key = names.get(row.key_id, row.key_id) if row.key_id else None
    who = f"reviewer {row.reviewer}" if row.reviewer else (row.end_user or key or "—")
    return FeedbackRow(
        row.id,
        row.request_id,
        row.created_at,
        row.source,
        who,
        score,
        _snip(row.correction or ""),
        preference,
        _snip(row.comment or ""),
    )


def _snip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"


# -- a queue, and its review form ----------------------------------------------------


def queue_page(ctx: PageContext) -> PageResult | Response:
    queue = visible_queue(ctx)
    reviewer = ctx.viewer.principal.name
    error = None
    if ctx.method == "POST":
        try:
            request_id = review_from_form(ctx, queue, reviewer)
        except (InvalidRequest, NotFound) as exc:
            error = str(exc)
        else:
            # Post, redirect, get: a reload does not send the review again.
            return RedirectResponse(ctx.url(f"/feedback/queues/{queue.id}", done=request_id), status_code=303)
    status = queue_status(ctx.engine, queue.id)
    items = next_items(ctx.engine, queue.id, reviewer, limit=1)
    item = items[0] if items else None
    alternatives = _alternatives(ctx, queue, item) if item else []
    mine = status.reviewers.get(reviewer, {"assigned": 0, "done": 0})
    with ctx.engine.connect() as connection:
        names = names_of(connection)
    return PageResult(
        "feedback_queue.html",
        {
            "queue": queue,
            "status": status,
            "item": item,
            "alternatives": alternatives,
            "reviewer": reviewer,
            "mine": mine,
            "done": ctx.params.get("done"),
            "error": error,
            "form": ctx.form if error else {},
            "team_name": names.get(queue.team_id, queue.team_id) if queue.team_id else None,
        },
        title=f"Queue {queue.name}",
    )


def visible_queue(ctx: PageContext) -> Queue:
    queue_id = ctx.path_params["queue_id"]
    queue = get_queue(ctx.engine, queue_id)  # NotFound for an unknown queue
    team_id = ctx.viewer.team_id
    # A team's key: its team's queues only; another team's (or the organisation's,
    # which may hold any team's requests) answers as one that does not exist.
    if team_id is not None and queue.team_id != team_id:
        raise NotFound(f"no annotation queue {queue_id!r}")
    return queue


def review_from_form(ctx: PageContext, queue: Queue, reviewer: str) -> str:
    """Store the posted review; returns the request it was about."""
    form = ctx.form
    request_id = form.get("request_id", "").strip()
    if not request_id:
        raise InvalidRequest("The form names no request.", param="request_id")
    body: dict[str, Any] = {"request_id": request_id}
    score: dict[str, Any] = {}
    if form.get("thumbs") in ("up", "down"):
        score["thumbs"] = form["thumbs"]
    elif form.get("thumbs"):
        raise InvalidRequest("Thumbs must be up or down.", param="thumbs")
    if form.get("rating"):
        try:
            score["rating"] = int(form["rating"])
        except ValueError:
            raise InvalidRequest("The rating must be a whole number from 1 to 5.", param="rating") from None
    if score:
        body["score"] = score
    for name in ("correction", "comment"):
        if form.get(name, "").strip():
            body[name] = form[name]
    pick = form.get("pick", "")
    if pick:
        other = form.get("other", "").strip()
        if pick not in ("this", "other") or not other:
            raise InvalidRequest("Pick this answer or the other one.", param="pick")
        sides = ({"request_id": request_id}, {"request_id": other})
        chosen, rejected = sides if pick == "this" else sides[::-1]
        body["preference"] = {"chosen": chosen, "rejected": rejected}
    if len(body) == 1:
        raise InvalidRequest("Give a score, a correction or a pick.", param="score")
    submit_review(ctx.engine, queue.id, reviewer, FeedbackInput.from_json(body))
    return request_id


@dataclass(frozen=True)
class Alternative:
    request_id: str
    answer: str


def _alternatives(ctx: PageContext, queue: Queue, item: ReviewItem) -> list[Alternative]:
    """Other answers to the same prompt among the queue's requests (e.g. the two arms of
    an A/B pair): what a reviewer may pick between."""
    query = (
        select(request_log.c.id, request_log.c.request_body, request_log.c.response_body)
        .select_from(annotation_items.join(request_log, request_log.c.id == annotation_items.c.request_id))
        .where(annotation_items.c.queue_id == queue.id, annotation_items.c.request_id != item.request_id)
        .order_by(annotation_items.c.position)
        .limit(_PICK_SCAN)
    )
    out = []
    with ctx.engine.connect() as connection:
        for row in connection.execute(query):
            if prompt_messages(json_object(row.request_body)) != item.messages:
                continue
            answer = answer_text(json_object(row.response_body))
            if answer and answer.strip() != item.answer.strip():
                out.append(Alternative(row.id, answer))
    return out[:3]
