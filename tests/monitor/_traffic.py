"""Generated request-log rows for the monitoring tests: a baseline workload, or one
with a shift (see keel.monitor._workload), spread over a time span."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Engine

from keel.monitor._workload import ShiftKind, generate
from keel.store import RequestRecord, insert_records

REFUSAL = "I'm sorry, but I can't help with that."


def make_records(
    start: datetime,
    span: timedelta,
    count: int,
    shift: ShiftKind | str = "none",
    *,
    seed: int = 0,
    route: str = "chat",
    slow: float = 1.0,
) -> list[RequestRecord]:
    """``count`` logged chat requests created in [start, start + span). ``slow``
    multiplies latencies (a latency shift)."""
    rng = np.random.default_rng(seed)
    workload = "none" if shift == "latency" else shift
    generated = generate(count, workload, model=route, seed=seed)  # type: ignore[arg-type]
    offsets = np.sort(rng.uniform(0, span.total_seconds(), size=count))
    out = []
    for request, offset in zip(generated, offsets, strict=True):
        text = request.body["messages"][-1]["content"]
        answer = REFUSAL if shift == "model" and rng.random() < 0.6 else "echo: " + text
        words_in, words_out = len(text.split()), len(answer.split())
        failed = rng.random() < 0.01
        latency = float(rng.lognormal(np.log(400), 0.3)) * (3.0 if shift == "latency" else slow)
        out.append(
            RequestRecord(
                id=uuid.uuid4().hex,
                created_at=start + timedelta(seconds=float(offset)),
                endpoint="chat.completions",
                requested_model=route,
                route=route,
                deployment="fake/fake-chat",
                status=502 if failed else 200,
                error_type="upstream_error" if failed else None,
                latency_ms=latency,
                input_tokens=words_in,
                output_tokens=None if failed else words_out,
                cost_nanos=words_in * 150 + words_out * 600,
                request_body=json.dumps(request.body),
                response_body=None
                if failed
                else json.dumps(
                    {"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}]}
                ),
            )
        )
    return out


def seed_log(engine: Engine, *batches: list[RequestRecord]) -> None:
    for batch in batches:
        insert_records(engine, batch)
