"""From production to golden set: logged chat requests as dataset rows to label.

What the request log holds for a chat request (``request_body``) is the body as the
client sent it: for a request that named a prompt, still the ``prompt`` object
(``{"name", "variables"}``, or ``"model": "prompt:NAME@label"`` with
``{"variables"}``), not the expanded messages; that gives rows with ``vars``, which
re-run through the same template. The exception is a request whose guard policy
redacted (or blocked) its input: the log then holds the expanded, redacted body
instead, so its row carries the rendered ``messages`` (and ``meta.prompt_expanded``).

A row: ``{"id", "vars", "messages"?, "expected", "tags", "meta"}``. ``id`` is a short
hash of the normalised input (after redaction, so the id gives nothing away);
``expected`` is the answer the model gave, a starting point for labelling.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, select

from keel.core import InvalidRequest, JSONObject
from keel.feedback import feedback as feedback_table
from keel.guards import JsonRedactor
from keel.prompts import MODEL_PREFIX, parse_prompt_ref
from keel.store import StatusFilter, request_log, status_condition

CHAT_ENDPOINT = "chat.completions"

# Why a selected request gave no row (the keys of ``ExportResult.skipped``).
SKIP_NO_BODY = "body not logged"
SKIP_TRUNCATED = "body truncated"
SKIP_UNREADABLE = "body not a JSON object"
SKIP_NO_INPUT = "no messages or prompt in the request"
SKIP_NO_ANSWER = "no answer text (tool calls only or empty)"

_COLUMNS = (
    request_log.c.id,
    request_log.c.created_at,
    request_log.c.requested_model,
    request_log.c.route,
    request_log.c.prompt_name,
    request_log.c.prompt_version,
    request_log.c.request_body,
    request_log.c.response_body,
    request_log.c.body_truncated,
)


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The dataset rows (oldest request first) and what became of every selected request:
    ``selected`` = ``written`` + ``duplicates`` + ``sampled_out`` + the ``skipped`` counts.
    ``redacted``: rows in which at least one value was replaced by a placeholder."""

    rows: tuple[JSONObject, ...]
    selected: int
    duplicates: int
    sampled_out: int
    redacted: int
    skipped: Mapping[str, int] = field(default_factory=dict)

    @property
    def written(self) -> int:
        return len(self.rows)


@dataclass(slots=True)
class _Candidate:
    request_id: str
    created_at: datetime
    model: str
    route: str | None
    prompt_name: str | None
    prompt: str | None  # name#version
    vars: dict[str, Any]
    messages: list[JSONObject] | None
    expected: str
    expanded: bool
    key: str  # the normalised input, before redaction


def export_from_logs(
    engine: Engine,
    *,
    route: str | None = None,
    prompt: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    status: StatusFilter | str | None = "ok",
    sample: int | None = None,
    seed: int = 0,
    redact: bool = True,
    feedback: str | None = None,
) -> ExportResult:
    """Logged chat requests as dataset rows, de-duplicated by their normalised input.

    Filters: ``route`` (the route that served the request), ``prompt`` (``name`` or
    ``name#version``; labels are not logged), ``since`` (inclusive) and ``until``
    (exclusive; a naive time is UTC), ``status`` (``"ok"``, the default; ``"error"``,
    an HTTP code, or None for all). ``sample``: keep N of the distinct inputs, chosen
    by a hash of each input and ``seed``, so the same log and seed give the same rows
    (and rows logged later displace only the ones they outrank). ``redact``: replace
    personal data and secrets with placeholders (``<EMAIL_1>``), using the ``pii`` and
    ``secrets`` guards. ``feedback``: only requests that got feedback (``any``), were
    rated well (``positive``: thumbs up or 4–5 of 5), badly (``negative``: thumbs down or
    1–2 of 5) or corrected (``corrected``).
    """
    feedback_condition = _feedback_condition(feedback) if feedback is not None else None
    if sample is not None and sample < 1:
        raise InvalidRequest(f"sample must be at least 1, not {sample}", param="sample")
    since, until = _as_utc(since), _as_utc(until)
    if since is not None and until is not None and since >= until:
        raise InvalidRequest(
            f"since ({since.isoformat()}) must be before until ({until.isoformat()})", param="since"
        )
    query = select(*_COLUMNS).where(request_log.c.endpoint == CHAT_ENDPOINT)
    if route is not None:
        query = query.where(request_log.c.route == route)
    if prompt is not None:
        query = query.where(*_prompt_conditions(prompt))
    if status is not None:
        query = query.where(status_condition(status))
    if feedback_condition is not None:
        query = query.where(feedback_condition)
    if since is not None:
        query = query.where(request_log.c.created_at >= since)
    if until is not None:
        query = query.where(request_log.c.created_at < until)
    query = query.order_by(request_log.c.created_at, request_log.c.id)

    tally = _Tally()
    with engine.connect() as connection:
        # Streamed: a long log is read once and only the sample is held.
        rows = connection.execution_options(yield_per=500).execute(query)
        distinct = _distinct(_candidates(rows, tally), tally)
        if sample is None:
            chosen = list(distinct)
        else:
            chosen = heapq.nsmallest(sample, distinct, key=lambda c: _rank(seed, c.key))
    if tally.selected == 0:
        raise InvalidRequest(
            f"no logged requests match {_describe(route, prompt, since, until, status, feedback)}"
        )
    sampled_out = tally.distinct - len(chosen)
    chosen.sort(key=lambda c: (c.created_at, c.request_id))

    redactor = JsonRedactor() if redact else None
    out: list[JSONObject] = []
    seen: set[str] = set()
    redacted = 0
    for candidate in chosen:
        row, changed = _row(candidate, redactor)
        # Two inputs that differed only in what redaction replaced are now one case.
        if row["id"] in seen:
            tally.duplicates += 1
            continue
        seen.add(row["id"])
        redacted += changed
        out.append(row)
    return ExportResult(
        rows=tuple(out),
        selected=tally.selected,
        duplicates=tally.duplicates,
        sampled_out=sampled_out,
        redacted=redacted,
        skipped=dict(tally.skipped),
    )


# --- selecting -------------------------------------------------------------------------


def _prompt_conditions(text: str) -> list[ColumnElement[bool]]:
    ref = parse_prompt_ref(text, param="prompt")
    if ref.label is not None:
        raise InvalidRequest(
            f"Cannot filter by prompt {text!r}: the request log records prompt versions, not labels; "
            f"use '{ref.name}' or '{ref.name}#VERSION'.",
            param="prompt",
        )
    conditions = [request_log.c.prompt_name == ref.name]
    if ref.version is not None:
        conditions.append(request_log.c.prompt_version == ref.version)
    return conditions


# score_value is 1 for thumbs up, 0 for down, (rating - 1) / 4 for a 1-5 rating.
_FEEDBACK_KINDS = ("any", "positive", "negative", "corrected")


def _feedback_condition(kind: str) -> ColumnElement[bool]:
    if kind not in _FEEDBACK_KINDS:
        raise InvalidRequest(
            f"feedback must be one of {', '.join(_FEEDBACK_KINDS)}, not {kind!r}", param="feedback"
        )
    given = select(feedback_table.c.request_id)
    if kind == "positive":
        given = given.where(feedback_table.c.score_value >= 0.75)
    elif kind == "negative":
        given = given.where(feedback_table.c.score_value <= 0.25)
    elif kind == "corrected":
        given = given.where(feedback_table.c.correction.is_not(None))
    return request_log.c.id.in_(given)


def _describe(
    route: str | None,
    prompt: str | None,
    since: datetime | None,
    until: datetime | None,
    status: StatusFilter | str | None,
    feedback: str | None = None,
) -> str:
    parts = [f"endpoint {CHAT_ENDPOINT}"]
    if feedback is not None:
        parts.append(f"feedback {feedback!r}")
    if route is not None:
        parts.append(f"route {route!r}")
    if prompt is not None:
        parts.append(f"prompt {prompt!r}")
    if since is not None:
        parts.append(f"since {since.isoformat()}")
    if until is not None:
        parts.append(f"until {until.isoformat()}")
    if status is not None:
        parts.append(f"status {status!r}")
    return ", ".join(parts)


class _Tally:
    __slots__ = ("distinct", "duplicates", "selected", "skipped")

    def __init__(self) -> None:
        self.selected = 0
        self.distinct = 0
        self.duplicates = 0
        self.skipped: Counter[str] = Counter()


def _candidates(rows: Any, tally: _Tally) -> Iterator[_Candidate]:
    for row in rows:
        tally.selected += 1
        candidate = _candidate(row)
        if isinstance(candidate, str):
            tally.skipped[candidate] += 1
        else:
            yield candidate


def _distinct(candidates: Iterator[_Candidate], tally: _Tally) -> Iterator[_Candidate]:
    """The first (oldest) request of each distinct input."""
    seen: set[bytes] = set()
    for candidate in candidates:
        digest = hashlib.sha256(candidate.key.encode()).digest()[:16]
        if digest in seen:
            tally.duplicates += 1
            continue
        seen.add(digest)
        tally.distinct += 1
        yield candidate


def _rank(seed: int, key: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).digest()


# --- reading a logged request ------------------------------------------------------------


def _candidate(row: Any) -> _Candidate | str:
    """The row's input and answer, or why it has none."""
    if row.body_truncated:
        return SKIP_TRUNCATED
    if not row.request_body or not row.response_body:
        return SKIP_NO_BODY
    request = _json_object(row.request_body)
    response = _json_object(row.response_body)
    if request is None or response is None:
        return SKIP_UNREADABLE
    found = _input(request)
    if found is None:
        return SKIP_NO_INPUT
    variables, messages, named = found
    expected = _answer_text(response)
    if not expected:
        return SKIP_NO_ANSWER
    prompt = None
    if row.prompt_name is not None:
        prompt = row.prompt_name if row.prompt_version is None else f"{row.prompt_name}#{row.prompt_version}"
    return _Candidate(
        request_id=row.id,
        created_at=row.created_at,
        model=row.requested_model,
        route=row.route,
        prompt_name=row.prompt_name,
        prompt=prompt,
        vars=variables,
        messages=messages,
        expected=expected,
        expanded=row.prompt_name is not None and not named,
        key=_input_key(row.prompt_name, variables, messages),
    )


def _json_object(text: str) -> JSONObject | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _input(body: JSONObject) -> tuple[dict[str, Any], list[JSONObject] | None, bool] | None:
    """(variables, messages, whether the body still names its prompt), or None when the
    request holds no input to replay."""
    field = body.get("prompt")
    model = body.get("model")
    named = isinstance(field, dict) or (isinstance(model, str) and model.startswith(MODEL_PREFIX))
    messages = body.get("messages")
    if messages is not None and not (
        isinstance(messages, list) and all(isinstance(m, dict) for m in messages)
    ):
        return None
    if named:
        variables = field.get("variables") if isinstance(field, dict) else None
        if variables is not None and not isinstance(variables, dict):
            return None
        # Messages sent with a prompt are the caller's history, spliced into the template.
        return dict(variables or {}), (list(messages) if messages else None), True
    if not messages:
        return None
    return {}, list(messages), False


def _answer_text(body: JSONObject) -> str | None:
    """The first choice's text: ``message.content`` in a response, ``content`` in the
    summary the gateway logs for a stream."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    choice = choices[0]
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else choice.get("content")
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        content = "".join(p for p in parts if isinstance(p, str))
    return content if isinstance(content, str) else None


def _input_key(prompt_name: str | None, variables: Mapping[str, Any], messages: Any) -> str:
    """The input as compared for duplicates: every text lower-cased with its whitespace
    collapsed. The prompt's name counts (the same variables for two prompts are two
    cases), its version does not (the same question asked of v2 and v3 is one case)."""
    return json.dumps(
        {"prompt": prompt_name, "vars": _normalised(variables), "messages": _normalised(messages)},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )


def _normalised(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.casefold().split())
    if isinstance(value, Mapping):
        return {k: _normalised(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalised(v) for v in value]
    return value


# --- the dataset row ---------------------------------------------------------------------


def _row(candidate: _Candidate, redactor: JsonRedactor | None) -> tuple[JSONObject, bool]:
    variables: Any = candidate.vars
    messages: Any = candidate.messages
    expected: Any = candidate.expected
    changed = False
    if redactor is not None:
        # One mapping for the whole row: the address in the question and in the answer
        # is the same <EMAIL_1>.
        (variables, messages, expected), changed = redactor((variables, messages, expected))
    key = _input_key(candidate.prompt_name, variables, messages)
    row: JSONObject = {"id": hashlib.sha256(key.encode()).hexdigest()[:16], "vars": variables}
    if messages is not None:
        row["messages"] = messages
    row["expected"] = expected
    row["tags"] = []
    meta: JSONObject = {
        "request_id": candidate.request_id,
        "model": candidate.model,
        "route": candidate.route,
        "prompt": candidate.prompt,
        "created_at": candidate.created_at.isoformat(),
    }
    if candidate.expanded:
        meta["prompt_expanded"] = True
    row["meta"] = meta
    return row, changed


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
