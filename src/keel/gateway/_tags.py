"""Request tags: ``x-keel-tags: eval_run=r1;case=c7`` attaches labels to a call's log
record (``extra.tags``), so a batch job (an eval run) can find its own calls. Bounded:
a client cannot make one log row large by sending many or long tags."""

from __future__ import annotations

from keel.core import InvalidRequest
from keel.gateway._asgi import Scope

TAGS_HEADER = b"x-keel-tags"
_MAX_TAGS = 16
_MAX_KEY = 64
_MAX_VALUE = 255


def request_tags(scope: Scope) -> dict[str, str] | None:
    """The tags the client sent, or None (the usual case: one pass over the headers)."""
    raw: bytes | None = None
    for name, value in scope["headers"]:
        if name == TAGS_HEADER:
            raw = value
            break
    if raw is None:
        return None
    tags: dict[str, str] = {}
    for part in raw.decode("utf-8", "replace").split(";"):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or len(key) > _MAX_KEY or len(value) > _MAX_VALUE:
            raise InvalidRequest(
                f"Malformed x-keel-tags header: expected 'key=value;key=value' (keys ≤ {_MAX_KEY}, "
                f"values ≤ {_MAX_VALUE} characters).",
                param="x-keel-tags",
            )
        tags[key] = value
    if len(tags) > _MAX_TAGS:
        raise InvalidRequest(f"At most {_MAX_TAGS} tags in x-keel-tags.", param="x-keel-tags")
    return tags or None
