"""Datasets: JSONL or CSV rows → ``Case`` values.

A JSONL row is an object. Its ``vars`` object fills the prompt's template; without one,
every field other than the reserved ones (``id``, ``expected``, ``tags``, ``meta``,
``messages``) is a variable, so a flat ``{"question": ..., "expected": ...}`` works. A
CSV row works the same way (columns are variables; ``tags`` is comma-separated).

A case's id is the row's ``id`` when it has one, else a hash of its content: either way
it stays the same between runs, so runs compare case by case. Every problem names the
file and line.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path

import orjson

from keel.core import InvalidRequest, JSONObject
from keel.evals._suite import DatasetSpec
from keel.evals._types import Case

_RESERVED = frozenset({"id", "expected", "tags", "meta", "messages", "vars"})


def load_dataset(spec: DatasetSpec) -> list[Case]:
    rows = _jsonl_rows(spec.path) if spec.format == "jsonl" else _csv_rows(spec.path)
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        case = _case(row, line, spec)
        if case.id in seen:
            raise InvalidRequest(
                f"{spec.path}:{line}: case id {case.id!r} is already used at line {seen[case.id]}"
            )
        seen[case.id] = line
        cases.append(case)
        if spec.limit is not None and len(cases) >= spec.limit:
            break
    if not cases:
        raise InvalidRequest(f"{spec.path}: the dataset has no rows")
    return cases


def case_content_hash(case: Case) -> str:
    """What the case is, hashed: part of the eval cache key, so an edited row is called again."""
    payload = {
        "vars": dict(case.vars),
        "expected": case.expected,
        "messages": list(case.messages) if case.messages is not None else None,
    }
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _jsonl_rows(path: Path) -> Iterator[tuple[int, JSONObject]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidRequest(f"{path}:{number}: invalid JSON: {exc}") from None
            if not isinstance(row, dict):
                raise InvalidRequest(f"{path}:{number}: a row is a JSON object, not {type(row).__name__}")
            yield number, row


def _csv_rows(path: Path) -> Iterator[tuple[int, JSONObject]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            raise InvalidRequest(f"{path}: the CSV file has no header row")
        for row in reader:
            # The header is line 1; DictReader counts physical lines, quoted newlines included.
            number = reader.line_num
            if None in row:
                raise InvalidRequest(f"{path}:{number}: more values than columns in the header")
            data: JSONObject = {key: value for key, value in row.items() if key}
            tags = data.get("tags")
            if isinstance(tags, str):
                data["tags"] = [t.strip() for t in tags.split(",") if t.strip()]
            yield number, data


def _case(row: JSONObject, line: int, spec: DatasetSpec) -> Case:
    where = f"{spec.path}:{line}"
    variables = row.get("vars")
    if variables is None:
        variables = {
            k: v
            for k, v in row.items()
            if k not in _RESERVED and k not in (spec.id_field, spec.expected_field)
        }
    elif not isinstance(variables, dict):
        raise InvalidRequest(f"{where}: 'vars' must be an object")
    messages = row.get("messages")
    if messages is not None:
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
            raise InvalidRequest(f"{where}: 'messages' must be a list of chat messages ({{role, content}})")
        messages = tuple(messages)
    tags = row.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidRequest(f"{where}: 'tags' must be a list of strings")
    meta = row.get("meta") or {}
    if not isinstance(meta, dict):
        raise InvalidRequest(f"{where}: 'meta' must be an object")
    extra = {k: v for k, v in row.items() if k not in _RESERVED and k not in variables}
    expected = row.get(spec.expected_field)
    provisional = Case("", variables, expected, frozenset(tags), {**extra, **meta}, line, messages)
    raw_id = row.get(spec.id_field)
    if raw_id is None or raw_id == "":
        case_id = case_content_hash(provisional)[:12]
    elif isinstance(raw_id, str | int) and not isinstance(raw_id, bool):
        case_id = str(raw_id)
        if len(case_id) > 255:
            raise InvalidRequest(f"{where}: case id longer than 255 characters")
    else:
        raise InvalidRequest(f"{where}: '{spec.id_field}' must be a string or an integer")
    return Case(case_id, variables, expected, frozenset(tags), {**extra, **meta}, line, messages)
