"""A feedback body, validated: what ``POST /v1/feedback`` and ``FeedbackStore.submit`` take.

    {"request_id": "...",                     the logged request the feedback is about
     "id": "...",                             optional idempotency id chosen by the client
     "score": {"thumbs": "up"|"down"} | {"rating": 1..5} | {"NAME": number | "category"},
     "correction": "the answer that should have been given",
     "preference": {"chosen": SIDE, "rejected": SIDE},
     "comment": "...", "user": "end user id"}

At least one of ``score``, ``correction`` and ``preference``. A preference SIDE is an
answer's text, or a logged request's id (a bare id, or ``{"request_id": "..."}``) whose
answer is meant: e.g. the two arms of an A/B pair Keel served.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keel.core import InvalidRequest

_FIELDS = frozenset({"request_id", "id", "score", "correction", "preference", "comment", "user"})
_SCORE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
# Keel's request ids: hex nanoseconds + 48 random bits (28 hex digits today).
REQUEST_ID = re.compile(r"[0-9a-f]{20,64}")
MAX_TEXT = 100_000
MAX_SCORES = 32

ScoreValue = float | int | str


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a preference: an answer's text or a logged request's id."""

    text: str | None = None
    request_id: str | None = None

    def to_json(self) -> str | dict[str, str]:
        return {"request_id": self.request_id} if self.request_id is not None else str(self.text)


@dataclass(frozen=True, slots=True)
class FeedbackInput:
    request_id: str
    client_id: str | None = None
    score: Mapping[str, ScoreValue] | None = None
    correction: str | None = None
    chosen: Side | None = None
    rejected: Side | None = None
    comment: str | None = None
    user: str | None = None

    @classmethod
    def from_json(cls, body: Any) -> FeedbackInput:
        """Validate a decoded JSON body; ``InvalidRequest`` names the first bad field."""
        if not isinstance(body, dict):
            raise InvalidRequest("The body must be a JSON object.")
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise InvalidRequest(f"Unknown field {unknown[0]!r}.", param=unknown[0])
        request_id = _string(body, "request_id", required=True, limit=64)
        assert request_id is not None
        chosen = rejected = None
        preference = body.get("preference")
        if preference is not None:
            if not isinstance(preference, dict) or set(preference) != {"chosen", "rejected"}:
                raise InvalidRequest(
                    "'preference' must be an object with 'chosen' and 'rejected'.", param="preference"
                )
            chosen = _side(preference["chosen"], "preference.chosen")
            rejected = _side(preference["rejected"], "preference.rejected")
            if chosen == rejected or (
                chosen.text is not None
                and rejected.text is not None
                and chosen.text.strip() == rejected.text.strip()
            ):
                raise InvalidRequest(
                    "'preference.chosen' and 'preference.rejected' are the same response.", param="preference"
                )
        made = cls(
            request_id=request_id,
            client_id=_string(body, "id", limit=255),
            score=_score(body.get("score")),
            correction=_string(body, "correction"),
            chosen=chosen,
            rejected=rejected,
            comment=_string(body, "comment"),
            user=_string(body, "user", limit=255),
        )
        if made.score is None and made.correction is None and made.chosen is None:
            raise InvalidRequest(
                "Give at least one of 'score', 'correction' and 'preference'.", param="score"
            )
        return made

    @property
    def score_value(self) -> float | None:
        """The score on 0..1 when it has one the exports understand (rating, else thumbs)."""
        if self.score is None:
            return None
        rating = self.score.get("rating")
        if isinstance(rating, int):
            return (rating - 1) / 4
        thumbs = self.score.get("thumbs")
        if thumbs is not None:
            return 1.0 if thumbs == "up" else 0.0
        return None

    def body_hash(self) -> str:
        """A hash of everything but the idempotency id: the same id with another hash is a
        conflict."""
        body = {
            "request_id": self.request_id,
            "score": dict(self.score) if self.score is not None else None,
            "correction": self.correction,
            "chosen": self.chosen.to_json() if self.chosen else None,
            "rejected": self.rejected.to_json() if self.rejected else None,
            "comment": self.comment,
            "user": self.user,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _string(
    body: Mapping[str, Any], name: str, *, required: bool = False, limit: int = MAX_TEXT
) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"Missing required field {name!r}.", param=name)
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{name!r} must be a non-empty string.", param=name)
    if len(value) > limit:
        raise InvalidRequest(f"{name!r} is longer than {limit} characters.", param=name)
    return value


def _side(value: Any, where: str) -> Side:
    if isinstance(value, dict):
        if set(value) != {"request_id"} or not isinstance(value["request_id"], str):
            raise InvalidRequest(
                f"{where!r} must be a response's text or {{'request_id': ...}}.", param=where
            )
        return Side(request_id=value["request_id"])
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{where!r} must be a non-empty string.", param=where)
    if len(value) > MAX_TEXT:
        raise InvalidRequest(f"{where!r} is longer than {MAX_TEXT} characters.", param=where)
    if REQUEST_ID.fullmatch(value):
        return Side(request_id=value)
    return Side(text=value)


def _score(value: Any) -> dict[str, ScoreValue] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise InvalidRequest("'score' must be a non-empty object.", param="score")
    if len(value) > MAX_SCORES:
        raise InvalidRequest(f"'score' has more than {MAX_SCORES} names.", param="score")
    out: dict[str, ScoreValue] = {}
    for name, item in value.items():
        where = f"score.{name}"
        if name == "thumbs":
            if item not in ("up", "down"):
                raise InvalidRequest("'score.thumbs' must be 'up' or 'down'.", param=where)
        elif name == "rating":
            if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= 5:
                raise InvalidRequest("'score.rating' must be a whole number from 1 to 5.", param=where)
        elif not _SCORE_NAME.fullmatch(name):
            raise InvalidRequest(
                f"Score name {name!r} must start with a letter and hold letters, digits, '_', '.', '-'.",
                param="score",
            )
        elif isinstance(item, bool) or not isinstance(item, int | float | str):
            raise InvalidRequest(f"{where!r} must be a number or a category (a string).", param=where)
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidRequest(f"{where!r} must be a finite number.", param=where)
        elif isinstance(item, str) and not 0 < len(item) <= 64:
            raise InvalidRequest(f"{where!r}: a category is 1 to 64 characters.", param=where)
        out[name] = item
    return out
