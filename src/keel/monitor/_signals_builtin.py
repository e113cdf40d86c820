"""The built-in signals of LLM traffic (see ``_signals`` for the sources).

``feedback_score`` reads the ``feedback`` table (issue #8) by name, without importing
the package that owns it (a sibling or higher layer): its request id, time and numeric
score are all it needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, column, inspect, select, table

from keel.guards import build_scanner, detect_language
from keel.monitor._binning import Binning
from keel.monitor._signals import Event, Group, LoggedRequest, signal
from keel.store import UTCDateTime, request_log

_TOKENS = Binning.log(0, 7)
_MILLISECONDS = Binning.log(-1, 7)
# Nano-USD: from a billionth of a dollar to a thousand dollars a request.
_NANOS = Binning.log(0, 12)
_CHARACTERS = Binning.log(0, 8)
_LOGPROB = Binning.linear(-20.0, 0.0, 0.05)
# A rate moving from 1 % to 3 % matters; the generic 0.1 Jensen–Shannon threshold would
# only notice it at about 1 % to 6 %.
_RATE = {"jensen_shannon": {"threshold": 0.05}}

_refusals = build_scanner("refusal")
_DECISION_RANK = {"allow": 0, "flag": 1, "redact": 2, "block": 3}


def _floats(column: Any) -> np.ndarray:
    return np.asarray(column, dtype=np.float64)


@signal("input_tokens", kind="numeric", binning=_TOKENS)
def input_tokens(columns: Mapping[str, Any]) -> np.ndarray:
    """Prompt tokens per request."""
    return _floats(columns["input_tokens"])


@signal("output_tokens", kind="numeric", binning=_TOKENS)
def output_tokens(columns: Mapping[str, Any]) -> np.ndarray:
    """Completion tokens per request."""
    return _floats(columns["output_tokens"])


@signal("latency_ms", kind="numeric", binning=_MILLISECONDS)
def latency_ms(columns: Mapping[str, Any]) -> np.ndarray:
    """Time to the whole answer, milliseconds."""
    return _floats(columns["latency_ms"])


@signal("ttft_ms", kind="numeric", binning=_MILLISECONDS)
def ttft_ms(columns: Mapping[str, Any]) -> np.ndarray:
    """Time to the first token of a stream, milliseconds."""
    return _floats(columns["ttft_ms"])


@signal("cost_per_request", kind="numeric", binning=_NANOS)
def cost_per_request(columns: Mapping[str, Any]) -> np.ndarray:
    """Cost of one request, nano-USD."""
    return _floats(columns["cost_nanos"])


@signal("error_rate", kind="categorical", settings=_RATE)
def error_rate(columns: Mapping[str, Any]) -> list[str | None]:
    """Share of requests that failed, by error type ("ok" for success)."""
    out: list[str | None] = []
    for status, error_type in zip(columns["status"], columns["error_type"], strict=True):
        if error_type:
            out.append(str(error_type))
        elif status is not None and int(status) >= 400:
            out.append(f"http_{int(status)}")
        else:
            out.append("ok")
    return out


@signal("guard_trigger_rate", kind="categorical", settings=_RATE)
def guard_trigger_rate(columns: Mapping[str, Any]) -> list[str | None]:
    """The strictest guard decision on a request (allow, flag, redact, block); requests
    without a guard policy are not counted."""
    out: list[str | None] = []
    for guards in columns["guards"]:
        if not isinstance(guards, Mapping):
            out.append(None)
            continue
        worst = "allow"
        for stage in guards.values():
            decision = stage.get("decision") if isinstance(stage, Mapping) else None
            if isinstance(decision, str) and _DECISION_RANK.get(decision, 0) > _DECISION_RANK[worst]:
                worst = decision
        out.append(worst)
    return out


@signal("cache_status", kind="categorical")
def cache_status(columns: Mapping[str, Any]) -> list[str | None]:
    """Cache hits and misses on routes that cache."""
    return [str(v) if v else None for v in columns["cache_status"]]


@signal("input_chars", kind="numeric", source="bodies", binning=_CHARACTERS)
def input_chars(request: LoggedRequest) -> float | None:
    """Characters in the user's message (sampled bodies)."""
    text = request.input_text
    return None if text is None else float(len(text))


@signal("output_chars", kind="numeric", source="bodies", binning=_CHARACTERS)
def output_chars(request: LoggedRequest) -> float | None:
    """Characters in the answer (sampled bodies)."""
    text = request.output_text
    return None if text is None else float(len(text))


@signal("language", kind="categorical", source="bodies")
def language(request: LoggedRequest) -> str | None:
    """Language of the user's message ("und" when undecided)."""
    text = request.input_text
    if text is None:
        return None
    found, _ = detect_language(text)
    return found or "und"


@signal("output_language", kind="categorical", source="bodies")
def output_language(request: LoggedRequest) -> str | None:
    """Language of the answer ("und" when undecided)."""
    text = request.output_text
    if text is None or request.status >= 400:
        return None
    found, _ = detect_language(text)
    return found or "und"


@signal("refusal_rate", kind="categorical", source="bodies", settings=_RATE)
def refusal_rate(request: LoggedRequest) -> str | None:
    """Share of answers that are refusals ("I'm sorry, but I can't ...")."""
    text = request.output_text
    if text is None or request.status >= 400:
        return None
    return "refusal" if _refusals.scan(text).verdict != "pass" else "answer"


@signal("logprob", kind="numeric", source="bodies", binning=_LOGPROB)
def logprob(request: LoggedRequest) -> float | None:
    """Mean token log-probability of the answer, when the provider returned them."""
    choices = request.response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        return None
    found = choices[0].get("logprobs")
    if not isinstance(found, Mapping):
        return None
    values: list[float] = []
    content = found.get("content")
    if isinstance(content, list):
        values = [t["logprob"] for t in content if isinstance(t, Mapping) and _number(t.get("logprob"))]
    elif isinstance(found.get("token_logprobs"), list):
        values = [v for v in found["token_logprobs"] if _number(v)]
    return float(np.mean(values)) if values else None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@signal("input_embedding", kind="embedding", source="bodies")
def input_embedding(request: LoggedRequest) -> str | None:
    """Embedding of the user's message (sampled)."""
    return request.input_text or None


@signal("output_embedding", kind="embedding", source="bodies")
def output_embedding(request: LoggedRequest) -> str | None:
    """Embedding of the answer (sampled)."""
    if request.status >= 400:
        return None
    return request.output_text or None


_feedback = table(
    "feedback",
    column("request_id"),
    column("created_at", UTCDateTime()),
    column("score_value"),
)


@signal("feedback_score", kind="numeric", source="events", binning=Binning.linear(-1.0, 10.0, 0.05))
def feedback_score(connection: Connection, start: datetime, end: datetime) -> Iterator[Event]:
    """Numeric feedback scores given in the window (thumbs, ratings), by the route of the
    request they are about; nothing until the feedback table exists."""
    if not inspect(connection).has_table("feedback"):
        return
    query = (
        select(
            _feedback.c.created_at,
            _feedback.c.score_value,
            _feedback.c.request_id,
            request_log.c.route,
            request_log.c.requested_model,
            request_log.c.prompt_name,
            request_log.c.prompt_version,
            request_log.c.deployment,
        )
        .join(request_log, request_log.c.id == _feedback.c.request_id)
        .where(
            _feedback.c.created_at >= start,
            _feedback.c.created_at < end,
            _feedback.c.score_value.is_not(None),
        )
    )
    for row in connection.execute(query):
        prompt = f"{row.prompt_name}@{row.prompt_version}" if row.prompt_name else ""
        group = Group(row.route or row.requested_model, prompt, row.deployment or "")
        yield Event(row.created_at, group, float(row.score_value), row.request_id)
