"""``export_dataset``: SFT or preference rows from feedback joined with the request log.

Where rows come from (``sources`` in the manifest):

SFT (prompt messages + the ideal answer)
  ``correction``      the correction a user or reviewer gave
  ``rated_answer``    the logged answer of a request whose feedback scores average at
                      least ``min_score`` (thumbs up = 1, down = 0, rating r = (r-1)/4)
Preference (prompt, chosen, rejected)
  ``preference``      an explicit preference (texts, or logged requests' answers)
  ``correction``      chosen = the correction, rejected = the logged answer
  ``rating_pair``     two answers to the same prompt with different average scores: the
                      best-rated against each lower-rated one

Every row is redacted (``pii`` + ``secrets``), then de-duplicated by its normalised text
(case and whitespace folded), then split and written by ``_layout``.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from keel.core import InvalidRequest
from keel.feedback import answer_text, feedback, json_object, prompt_messages
from keel.guards import JsonRedactor
from keel.pipelines._hh import preference_to_hh
from keel.pipelines._layout import split_rows, write_dataset
from keel.pipelines._schema import FORMATS, KINDS, Format, Kind
from keel.store import request_log

# Why a feedback row gave no dataset row (the manifest's ``skipped``).
SKIP_NO_PROMPT = "prompt not in the log (body not logged, named prompt, tools or images)"
SKIP_NO_ANSWER = "no logged answer"
SKIP_UNRESOLVED = "preference side's request not found"
SKIP_SAME = "chosen and rejected identical"
SKIP_LOW_SCORE = "score below min_score (sft)"
SKIP_NOTHING = "nothing usable for this kind"


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    manifest: dict[str, Any]


@dataclass(slots=True)
class _Request:
    id: str
    messages: list[dict[str, str]] | None
    answer: str | None


def export_dataset(
    engine: Engine,
    out: Path,
    *,
    kind: Kind,
    fmt: Format = "trl",
    since: datetime | None = None,
    route: str | None = None,
    prompt: str | None = None,
    team_id: str | None = None,
    min_score: float = 0.75,
    eval_fraction: float = 0.1,
    seed: int = 0,
    redact: bool = True,
) -> ExportResult:
    """Build a dataset directory at ``out`` from the feedback matching the filters
    (``since``: feedback given at or after; ``route``: the route that served the
    request; ``prompt``: ``name`` or ``name#version``). An empty selection raises
    ``InvalidRequest`` and writes nothing."""
    if kind not in KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}, not {kind!r}", param="kind")
    if fmt not in FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}", param="format")
    if kind == "sft" and fmt == "hh":
        raise InvalidRequest("the HH-RLHF format holds preference pairs; export SFT as 'trl'", param="format")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    filters = {
        "since": since.isoformat() if since else None,
        "route": route,
        "prompt": prompt,
        "team_id": team_id,
        "min_score": min_score,
        "redact": redact,
    }
    items = _select(engine, since=since, route=route, prompt=prompt, team_id=team_id)
    if not items:
        raise InvalidRequest(f"no feedback matches {_describe(filters)}: nothing to export")
    requests = _requests(engine, _request_ids(items))
    skipped: Counter[str] = Counter()
    if kind == "sft":
        candidates = _sft_rows(items, requests, min_score, skipped)
    else:
        candidates = _preference_rows(items, requests, skipped)
    redactor = JsonRedactor() if redact else None
    rows: list[dict[str, Any]] = []
    sources: Counter[str] = Counter()
    seen: set[str] = set()
    duplicates = redacted = 0
    for source, row in candidates:
        if redactor is not None:
            row, changed = redactor(row)
        else:
            changed = False
        key = dedupe_key(row)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        redacted += changed
        sources[source] += 1
        rows.append(row)
    if not rows:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items())) or "none usable"
        raise InvalidRequest(
            f"{len(items)} feedback rows match {_describe(filters)}, but none gives a {kind} row ({reasons})"
        )
    train, evaluation = split_rows(rows, eval_fraction=eval_fraction, seed=seed)
    if fmt == "hh":
        train = [preference_to_hh(row) for row in train]
        evaluation = [preference_to_hh(row) for row in evaluation]
    details = {
        "filters": filters,
        "seed": seed,
        "eval_fraction": eval_fraction,
        "sources": dict(sorted(sources.items())),
        "selected_feedback": len(items),
        "duplicates": duplicates,
        "redacted_rows": redacted,
        "skipped": dict(sorted(skipped.items())),
    }
    manifest = write_dataset(out, kind=kind, fmt=fmt, train=train, evaluation=evaluation, details=details)
    return ExportResult(out, manifest)


def _describe(filters: Mapping[str, Any]) -> str:
    shown = [
        f"{k}={v!r}"
        for k, v in filters.items()
        if v is not None and k in ("since", "route", "prompt", "team_id")
    ]
    return ", ".join(shown) if shown else "(no filters)"


# --- selecting -----------------------------------------------------------------------------


def _select(
    engine: Engine, *, since: datetime | None, route: str | None, prompt: str | None, team_id: str | None
) -> list[Any]:
    query = select(feedback).select_from(
        feedback.join(request_log, request_log.c.id == feedback.c.request_id)
    )
    if since is not None:
        query = query.where(feedback.c.created_at >= since)
    if route is not None:
        query = query.where(request_log.c.route == route)
    if team_id is not None:
        query = query.where(request_log.c.team_id == team_id)
    if prompt is not None:
        name, _, version = prompt.partition("#")
        query = query.where(request_log.c.prompt_name == name)
        if version:
            if not version.isdigit():
                raise InvalidRequest(
                    f"prompt {prompt!r}: the version after '#' must be a number", param="prompt"
                )
            query = query.where(request_log.c.prompt_version == int(version))
    query = query.order_by(feedback.c.created_at, feedback.c.id)
    with engine.connect() as connection:
        return list(connection.execute(query))


def _request_ids(items: Iterable[Any]) -> set[str]:
    ids: set[str] = set()
    for item in items:
        ids.add(item.request_id)
        for other in (item.chosen_request_id, item.rejected_request_id):
            if other is not None:
                ids.add(other)
    return ids


def _requests(engine: Engine, ids: set[str]) -> dict[str, _Request]:
    out: dict[str, _Request] = {}
    ordered = sorted(ids)
    with engine.connect() as connection:
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            query = select(
                request_log.c.id,
                request_log.c.request_body,
                request_log.c.response_body,
                request_log.c.body_truncated,
            ).where(request_log.c.id.in_(chunk))
            for row in connection.execute(query):
                if row.body_truncated:
                    out[row.id] = _Request(row.id, None, None)
                    continue
                out[row.id] = _Request(
                    row.id,
                    prompt_messages(json_object(row.request_body)),
                    answer_text(json_object(row.response_body)),
                )
    return out


# --- rows ------------------------------------------------------------------------------------


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _mean_scores(items: Iterable[Any]) -> dict[str, float]:
    scores: dict[str, list[float]] = defaultdict(list)
    for item in items:
        if item.score_value is not None:
            scores[item.request_id].append(item.score_value)
    return {request_id: sum(values) / len(values) for request_id, values in scores.items()}


def _sft_rows(
    items: list[Any], requests: Mapping[str, _Request], min_score: float, skipped: Counter[str]
) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for item in items:
        request = requests[item.request_id]
        if item.correction is None:
            continue  # rated answers are taken per request below
        if request.messages is None:
            skipped[SKIP_NO_PROMPT] += 1
            continue
        out.append(("correction", {"messages": [*request.messages, *_assistant(item.correction)]}))
    counted: set[str] = set()
    means = _mean_scores(items)
    for item in items:
        if item.correction is not None or item.request_id in counted:
            continue
        counted.add(item.request_id)
        request = requests[item.request_id]
        mean = means.get(item.request_id)
        if mean is None:
            skipped[SKIP_NOTHING] += 1
        elif mean < min_score:
            skipped[SKIP_LOW_SCORE] += 1
        elif request.messages is None:
            skipped[SKIP_NO_PROMPT] += 1
        elif not request.answer:
            skipped[SKIP_NO_ANSWER] += 1
        else:
            out.append(("rated_answer", {"messages": [*request.messages, *_assistant(request.answer)]}))
    return out


def _preference_rows(
    items: list[Any], requests: Mapping[str, _Request], skipped: Counter[str]
) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []

    def side(text: str | None, request_id: str | None) -> str | None:
        if request_id is None:
            return text
        other = requests.get(request_id)
        return other.answer if other is not None else None

    def add(source: str, messages: list[dict[str, str]], chosen: str, rejected: str) -> None:
        if chosen.strip() == rejected.strip():
            skipped[SKIP_SAME] += 1
            return
        out.append(
            (source, {"prompt": messages, "chosen": _assistant(chosen), "rejected": _assistant(rejected)})
        )

    for item in items:
        request = requests[item.request_id]
        usable = item.correction is not None or item.chosen is not None or item.chosen_request_id is not None
        if not usable:
            continue
        if request.messages is None:
            skipped[SKIP_NO_PROMPT] += 1
            continue
        if item.chosen is not None or item.chosen_request_id is not None:
            chosen = side(item.chosen, item.chosen_request_id)
            rejected = side(item.rejected, item.rejected_request_id)
            if chosen is None or rejected is None:
                skipped[SKIP_UNRESOLVED] += 1
            else:
                add("preference", request.messages, chosen, rejected)
        if item.correction is not None:
            if not request.answer:
                skipped[SKIP_NO_ANSWER] += 1
            else:
                add("correction", request.messages, item.correction, request.answer)
    out.extend(_rating_pairs(items, requests, skipped))
    return out


def _rating_pairs(
    items: list[Any], requests: Mapping[str, _Request], skipped: Counter[str]
) -> list[tuple[str, dict[str, Any]]]:
    """The best-rated answer to each prompt against every lower-rated answer to it."""
    by_prompt: dict[str, list[tuple[float, str, _Request]]] = defaultdict(list)
    for request_id, mean in _mean_scores(items).items():
        request = requests[request_id]
        if request.messages is None or not request.answer:
            continue
        key = json.dumps(request.messages, sort_keys=True)
        by_prompt[key].append((mean, request_id, request))
    out: list[tuple[str, dict[str, Any]]] = []
    for group in by_prompt.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda entry: (-entry[0], entry[1]))
        best_score, _, best = group[0]
        assert best.messages is not None and best.answer is not None
        for score, _, other in group[1:]:
            assert other.answer is not None
            if score >= best_score:
                continue
            if other.answer.strip() == best.answer.strip():
                skipped[SKIP_SAME] += 1
                continue
            out.append(
                (
                    "rating_pair",
                    {
                        "prompt": best.messages,
                        "chosen": _assistant(best.answer),
                        "rejected": _assistant(other.answer),
                    },
                )
            )
    return out


def dedupe_key(row: Mapping[str, Any]) -> str:
    return json.dumps(_normalised(row), sort_keys=True, ensure_ascii=False)


def _normalised(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.casefold().split())
    if isinstance(value, Mapping):
        return {k: _normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return value
