"""Logged chat requests written straight into the request log (for tests that need many)."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from keel.store import RequestRecord, insert_records

_BASE = datetime(2026, 11, 1, tzinfo=UTC)
_counter = [0]


def log_chat(
    engine: Engine,
    question: str,
    answer: str,
    *,
    system: str | None = None,
    route: str = "chat",
    team_id: str | None = None,
    status: int = 200,
    prompt_name: str | None = None,
    body: dict[str, object] | None = None,
) -> str:
    """One logged chat request; its id."""
    _counter[0] += 1
    request_id = f"{time.time_ns():x}{os.urandom(6).hex()}"
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": question}
    ]
    request = body if body is not None else {"model": route, "messages": messages}
    response = {"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}]}
    insert_records(
        engine,
        [
            RequestRecord(
                id=request_id,
                created_at=_BASE + timedelta(seconds=_counter[0]),
                endpoint="chat.completions",
                requested_model=route,
                status=status,
                route=route,
                team_id=team_id,
                request_body=json.dumps(request),
                response_body=json.dumps(response),
                prompt_name=prompt_name,
            )
        ],
    )
    return request_id
