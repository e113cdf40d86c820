"""``FeedbackStore``: feedback written against the request log, idempotently.

Who may give feedback on a request: an admin key on any; any other key (service keys
included: applications send their users' thumbs) on its own team's requests only. A
request the key may not see answers 404 exactly like one that does not exist. Without
access control (no key) every request is open.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import Engine, Row, select
from sqlalchemy.exc import IntegrityError

from keel.core import InvalidRequest, NotFound
from keel.feedback._bodies import answer_text, json_object
from keel.feedback._errors import FeedbackConflict
from keel.feedback._input import FeedbackInput, ScoreValue, Side
from keel.feedback._tables import feedback
from keel.store import request_log

Source = Literal["api", "review"]


class KeyHolder(Protocol):
    """What feedback needs of an authenticated key (``keel.access.Principal`` fits)."""

    @property
    def key_id(self) -> str: ...

    @property
    def team_id(self) -> str | None: ...

    @property
    def role(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Giver:
    """Who gives feedback: a key (its id and team) or, without access control, nobody in
    particular (``key_id`` None, which sees every request)."""

    key_id: str | None = None
    team_id: str | None = None
    is_admin: bool = False

    @classmethod
    def of(cls, key: KeyHolder | None) -> Giver:
        if key is None:
            return cls()
        return cls(key.key_id, key.team_id, key.role == "admin")

    @property
    def unrestricted(self) -> bool:
        return self.key_id is None or self.is_admin

    def may_see(self, team_id: str | None) -> bool:
        return self.unrestricted or (self.team_id is not None and team_id == self.team_id)


class UnknownRequest(NotFound):
    """No logged request with this id that the key may see (it may not be logged *yet*:
    the log is written in batches just after the answer)."""

    def __init__(self, request_id: str, param: str) -> None:
        super().__init__(
            f"No request {request_id!r} in the request log (or not one this key may see).", param=param
        )
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Feedback:
    id: str
    client_id: str | None
    request_id: str
    created_at: datetime
    source: str
    key_id: str | None
    team_id: str | None
    user: str | None
    reviewer: str | None
    queue_id: str | None
    score: dict[str, ScoreValue] | None
    score_value: float | None
    correction: str | None
    chosen: Side | None
    rejected: Side | None
    comment: str | None

    @classmethod
    def of(cls, row: Row[Any]) -> Feedback:
        def side(text: str | None, request_id: str | None) -> Side | None:
            return Side(text, request_id) if text is not None or request_id is not None else None

        return cls(
            id=row.id,
            client_id=row.client_id,
            request_id=row.request_id,
            created_at=row.created_at,
            source=row.source,
            key_id=row.key_id,
            team_id=row.team_id,
            user=row.end_user,
            reviewer=row.reviewer,
            queue_id=row.queue_id,
            score=row.score,
            score_value=row.score_value,
            correction=row.correction,
            chosen=side(row.chosen, row.chosen_request_id),
            rejected=side(row.rejected, row.rejected_request_id),
            comment=row.comment,
        )

    def to_json(self) -> dict[str, Any]:
        preference = None
        if self.chosen is not None and self.rejected is not None:
            preference = {"chosen": self.chosen.to_json(), "rejected": self.rejected.to_json()}
        return {
            "object": "feedback",
            "id": self.id,
            "client_id": self.client_id,
            "request_id": self.request_id,
            "created_at": self.created_at.isoformat(),
            "source": self.source,
            "key_id": self.key_id,
            "team_id": self.team_id,
            "user": self.user,
            "reviewer": self.reviewer,
            "queue_id": self.queue_id,
            "score": self.score,
            "correction": self.correction,
            "preference": preference,
            "comment": self.comment,
        }


def new_feedback_id() -> str:
    # Time-ordered like request ids: inserts append to the primary-key index.
    return f"fb_{time.time_ns():x}{os.urandom(4).hex()}"


class FeedbackStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def submit(
        self,
        giver: Giver,
        data: FeedbackInput,
        *,
        source: Source = "api",
        scope: str | None = None,
        reviewer: str | None = None,
        queue_id: str | None = None,
    ) -> tuple[Feedback, bool]:
        """Store ``data``: (the feedback, True) when new; (the stored one, False) when
        this scope already holds the same body under the same client id. Raises
        ``FeedbackConflict`` (409) for another body under that id, ``UnknownRequest``
        (404) for a request the giver may not see, ``InvalidRequest`` (400) for a
        preference between two identical answers."""
        scope = scope if scope is not None else (giver.key_id or "")
        digest = data.body_hash()
        existing = self._by_client_id(scope, data.client_id)
        if existing is not None:
            return self._replay(existing, digest, data.client_id), False
        team_id = self._visible_team(giver, data.request_id, "request_id")
        chosen_text = self._side_text(giver, data.chosen, "preference.chosen")
        rejected_text = self._side_text(giver, data.rejected, "preference.rejected")
        if chosen_text is not None and chosen_text.strip() == (rejected_text or "").strip():
            raise InvalidRequest(
                "'preference.chosen' and 'preference.rejected' are the same response.", param="preference"
            )
        feedback_id = new_feedback_id()
        values: dict[str, Any] = {
            "id": feedback_id,
            "scope": scope,
            "client_id": data.client_id,
            "request_id": data.request_id,
            "created_at": datetime.now(UTC),
            "source": source,
            "key_id": giver.key_id,
            # The request's team: feedback belongs with what it is about.
            "team_id": team_id,
            "end_user": data.user,
            "reviewer": reviewer,
            "queue_id": queue_id,
            "score": dict(data.score) if data.score is not None else None,
            "score_value": data.score_value,
            "correction": data.correction,
            "chosen": data.chosen.text if data.chosen else None,
            "chosen_request_id": data.chosen.request_id if data.chosen else None,
            "rejected": data.rejected.text if data.rejected else None,
            "rejected_request_id": data.rejected.request_id if data.rejected else None,
            "comment": data.comment,
            "body_hash": digest,
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(feedback.insert().values(**values))
        except IntegrityError:
            # The same id sent twice at once: the other insert won.
            existing = self._by_client_id(scope, data.client_id)
            if existing is None:
                raise
            return self._replay(existing, digest, data.client_id), False
        stored = self._get(feedback_id)
        assert stored is not None
        return stored, True

    async def submit_async(
        self, giver: Giver, data: FeedbackInput, *, wait: float = 2.0
    ) -> tuple[Feedback, bool]:
        """``submit`` off the event loop; a request not (yet) in the log is looked for
        again for up to ``wait`` seconds, since the log is written just after the answer."""
        deadline = time.monotonic() + wait
        while True:
            try:
                return await asyncio.to_thread(self.submit, giver, data)
            except UnknownRequest:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.05)

    def for_request(self, giver: Giver, request_id: str) -> list[Feedback]:
        """The feedback on one request, oldest first."""
        self._visible_team(giver, request_id, "request_id")
        query = (
            select(feedback)
            .where(feedback.c.request_id == request_id)
            .order_by(feedback.c.created_at, feedback.c.id)
        )
        with self.engine.connect() as connection:
            return [Feedback.of(row) for row in connection.execute(query)]

    def get(self, feedback_id: str) -> Feedback | None:
        return self._get(feedback_id)

    # -- helpers ---------------------------------------------------------------------------

    def _replay(self, row: Row[Any], digest: str, client_id: str | None) -> Feedback:
        if row.body_hash != digest:
            raise FeedbackConflict(
                f"Feedback with id {client_id!r} was already given with a different body; "
                "use a new id for new feedback.",
                param="id",
            )
        return Feedback.of(row)

    def _by_client_id(self, scope: str, client_id: str | None) -> Row[Any] | None:
        if client_id is None:
            return None
        query = select(feedback).where(feedback.c.scope == scope, feedback.c.client_id == client_id)
        with self.engine.connect() as connection:
            return connection.execute(query).first()

    def _get(self, feedback_id: str) -> Feedback | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(feedback).where(feedback.c.id == feedback_id)).first()
        return Feedback.of(row) if row is not None else None

    def _visible_team(self, giver: Giver, request_id: str, param: str) -> str | None:
        query = select(request_log.c.team_id).where(request_log.c.id == request_id)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None or not giver.may_see(row.team_id):
            raise UnknownRequest(request_id, param)
        team_id: str | None = row.team_id
        return team_id

    def _side_text(self, giver: Giver, side: Side | None, param: str) -> str | None:
        """The side's answer text (a request's logged answer); None when not known."""
        if side is None:
            return None
        if side.request_id is None:
            return side.text
        self._visible_team(giver, side.request_id, param)
        query = select(request_log.c.response_body).where(request_log.c.id == side.request_id)
        with self.engine.connect() as connection:
            body = connection.execute(query).scalar()
        return answer_text(json_object(body))
