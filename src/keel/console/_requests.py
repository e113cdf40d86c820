"""The Requests page's queries: a filtered list, newest first, paged by keyset (the
``created_at, id`` of the last row shown), and one request's full record."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, or_, select

from keel.console._range import TimeRange
from keel.console._sql import c, guard_decision, guard_verdict_is, where
from keel.core import InvalidRequest
from keel.store import status_condition

PAGE_SIZE = 50
GUARD_FILTERS = ("any", "block", "redact", "flag", "allow", "none")
_LIST_COLUMNS = (
    c.id,
    c.created_at,
    c.requested_model,
    c.route,
    c.status,
    c.error_type,
    c.latency_ms,
    c.cost_nanos,
    c.team_id,
    c.key_id,
    c.end_user,
    c.prompt_name,
    c.prompt_version,
    c.cache_status,
    guard_decision("input").label("guard_input"),
    guard_decision("output").label("guard_output"),
)


@dataclass(frozen=True, slots=True)
class RequestFilters:
    model: str | None = None
    team: str | None = None
    status: str | None = None  # "ok", "error" or a code
    prompt: str | None = None  # "name" or "name@version"
    guard: str | None = None
    q: str | None = None
    before: str | None = None  # the cursor: "<created_at iso>|<id>"

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> RequestFilters:
        values = {name: (params.get(name) or "").strip() or None for name in cls.__slots__}
        guard = values["guard"]
        if guard is not None and guard not in GUARD_FILTERS:
            raise InvalidRequest(f"guard must be one of {', '.join(GUARD_FILTERS)}.", param="guard")
        return cls(**values)

    def query(self, **changes: str | None) -> dict[str, str]:
        """These filters as URL parameters (with ``changes``), empty ones left out."""
        values = {name: getattr(self, name) for name in self.__slots__} | changes
        return {name: value for name, value in values.items() if value}


@dataclass(frozen=True, slots=True)
class RequestPage:
    rows: list[Any]
    next_cursor: str | None


def _conditions(
    connection: Connection, filters: RequestFilters, team_id: str | None, time_range: TimeRange
) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if filters.model:
        conditions.append(c.requested_model == filters.model)
    if filters.status:
        conditions.append(status_condition(filters.status))
    if filters.prompt:
        name, _, version = filters.prompt.partition("@")
        conditions.append(c.prompt_name == name)
        if version:
            if not version.isdigit():
                raise InvalidRequest("prompt must be 'name' or 'name@version'.", param="prompt")
            conditions.append(c.prompt_version == int(version))
    if filters.guard:
        conditions.append(guard_verdict_is(connection, filters.guard))
    if filters.q:
        pattern = "%" + filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(c.request_body.ilike(pattern, escape="\\"), c.response_body.ilike(pattern, escape="\\"))
        )
    if filters.before:
        moment, _, request_id = filters.before.partition("|")
        try:
            at = datetime.fromisoformat(moment)
        except ValueError:
            raise InvalidRequest("Malformed page cursor.", param="before") from None
        conditions.append(or_(c.created_at < at, and_(c.created_at == at, c.id < request_id)))
    return where(team_id, time_range, *conditions)


def list_requests(
    connection: Connection, filters: RequestFilters, team_id: str | None, time_range: TimeRange
) -> RequestPage:
    query = (
        select(*_LIST_COLUMNS)
        .where(_conditions(connection, filters, team_id, time_range))
        .order_by(c.created_at.desc(), c.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    rows = list(connection.execute(query))
    cursor = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        last = rows[-1]
        cursor = f"{last.created_at.isoformat()}|{last.id}"
    return RequestPage(rows, cursor)


def parse_json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def messages_of(body: Any) -> list[dict[str, str]]:
    """A request body's messages (or prompt/input) as role + text, for reading."""
    if not isinstance(body, dict):
        return []
    out = []
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            out.append({"role": str(message.get("role", "")), "content": _text(message.get("content"))})
    for key in ("prompt", "input"):
        if key in body and not out:
            out.append({"role": key, "content": _text(body[key])})
    return out


def answers_of(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    out = []
    for choice in body.get("choices") or ():
        if isinstance(choice, dict):
            message = choice.get("message")
            if isinstance(message, dict):
                out.append(_text(message.get("content")))
            elif "text" in choice:
                out.append(_text(choice["text"]))
    return out


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
        return "\n".join(str(p) for p in parts)
    return json.dumps(content, indent=2)


def waterfall_svg(ttft_ms: float | None, latency_ms: float | None, width: int = 520) -> str:
    """The request's timing as two bars on one scale: time to first token, then total."""
    if latency_ms is None or latency_ms <= 0:
        return ""
    scale = (width - 160 - 70) / latency_ms  # room for the labels left and the values right
    rows = []
    y = 4
    if ttft_ms is not None:
        rows.append(("time to first token", 0.0, ttft_ms, "#5b8def"))
        rows.append(("rest of the answer", ttft_ms, latency_ms - ttft_ms, "#9bb8f5"))
    rows.append(("total", 0.0, latency_ms, "#2f4f8f"))
    parts = []
    for label, start, length, color in rows:
        x = 160 + start * scale
        w = max(length * scale, 1.0)
        parts.append(
            f'<text x="0" y="{y + 12}" font-size="12">{label}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="16" fill="{color}" '
            f'data-value="{length:.1f}"><title>{label}: {length:.0f} ms</title></rect>'
            f'<text x="{x + w + 4:.1f}" y="{y + 12}" font-size="11">{length:.0f} ms</text>'
        )
        y += 24
    return (
        f'<svg role="img" class="waterfall" width="{width}" height="{y + 4}" '
        f'viewBox="0 0 {width} {y + 4}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>Timing</title>{''.join(parts)}</svg>"
    )
