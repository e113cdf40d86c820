"""Store test helpers (the database fixtures live in tests/databases.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from keel.store import RequestRecord

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def make_record(n: int, **fields: Any) -> RequestRecord:
    """A plausible record; ``n`` orders ``created_at`` (one second apart from T0)."""
    record = RequestRecord(
        id=f"req-{n:06d}",
        created_at=T0 + timedelta(seconds=n),
        endpoint="chat.completions",
        requested_model="gpt-test",
        status=200,
        deployment="fake/gpt-test",
        attempts=1,
        latency_ms=12.5,
        input_tokens=10,
        output_tokens=3,
        usage_source="reported",
    )
    return replace(record, **fields)
