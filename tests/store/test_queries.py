from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine

from keel.core import InvalidRequest
from keel.store import RequestRecord, get_request, insert_records, recent_requests
from tests.store.conftest import T0, make_record


@pytest.fixture
def logged(engine: Engine) -> list[RequestRecord]:
    records = [
        make_record(1, requested_model="alpha"),
        make_record(2, requested_model="beta", status=500, error_type="upstream_error"),
        make_record(3, requested_model="alpha", status=429, error_type="rate_limit_error"),
        # A stream that broke after its first byte: 200, but an error all the same.
        make_record(4, requested_model="alpha", stream=True, error_type="stream_interrupted"),
        make_record(5, requested_model="beta"),
    ]
    insert_records(engine, records)
    return records


def ids(records: list[RequestRecord]) -> list[str]:
    return [record.id for record in records]


def test_newest_first_and_limited(engine: Engine, logged: list[RequestRecord]) -> None:
    assert ids(recent_requests(engine)) == [
        "req-000005",
        "req-000004",
        "req-000003",
        "req-000002",
        "req-000001",
    ]
    assert ids(recent_requests(engine, limit=2)) == ["req-000005", "req-000004"]


def test_filter_by_model(engine: Engine, logged: list[RequestRecord]) -> None:
    assert ids(recent_requests(engine, model="beta")) == ["req-000005", "req-000002"]
    assert recent_requests(engine, model="gamma") == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, ["req-000005", "req-000004", "req-000001"]),
        ("429", ["req-000003"]),
        ("error", ["req-000004", "req-000003", "req-000002"]),
        ("ok", ["req-000005", "req-000001"]),
    ],
)
def test_filter_by_status(
    engine: Engine, logged: list[RequestRecord], status: int | str, expected: list[str]
) -> None:
    assert ids(recent_requests(engine, status=status)) == expected


def test_filter_since_is_inclusive_and_time_zone_aware(engine: Engine, logged: list[RequestRecord]) -> None:
    plus_two = timezone(timedelta(hours=2))
    since = (T0 + timedelta(seconds=4)).astimezone(plus_two)
    assert ids(recent_requests(engine, since=since)) == ["req-000005", "req-000004"]
    # A naive time is UTC.
    naive = (T0 + timedelta(seconds=5)).replace(tzinfo=None)
    assert ids(recent_requests(engine, since=naive, model="beta")) == ["req-000005"]


def test_bad_filters_are_refused(engine: Engine) -> None:
    with pytest.raises(InvalidRequest, match="status"):
        recent_requests(engine, status="fine")
    with pytest.raises(InvalidRequest, match="limit"):
        recent_requests(engine, limit=0)


def test_every_field_round_trips(engine: Engine) -> None:
    record = RequestRecord(
        id="req-full",
        created_at=datetime(2025, 3, 1, 14, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
        endpoint="chat.completions",
        requested_model="gpt-4o-mini",
        status=502,
        stream=True,
        route="gpt-4o-mini",
        provider="openai",
        deployment="openai/gpt-4o-mini",
        attempts=3,
        error_type="upstream_error",
        error_message="bad gateway",
        latency_ms=1234.5,
        ttft_ms=210.25,
        input_tokens=120,
        cached_input_tokens=64,
        output_tokens=0,
        usage_source="counted",
        key_id="key_1",
        team_id="team_1",
        end_user="user-42",
        request_body='{"model": "gpt-4o-mini", "messages": []}',
        response_body="é😀",
        body_truncated=True,
        extra={"fallback_from": ["a", "b"], "n": 2, "nested": {"ok": True}},
    )
    insert_records(engine, [record])
    loaded = get_request(engine, "req-full")
    assert loaded is not None
    assert loaded.created_at.tzinfo == UTC
    assert loaded == record  # equal instants compare equal across time zones
    assert get_request(engine, "req-missing") is None


def test_values_a_driver_would_refuse_are_made_storable(engine: Engine) -> None:
    record = make_record(
        1,
        requested_model="m" * 300,  # column holds 255
        error_message="broken\x00stream",  # PostgreSQL text cannot hold NUL
        response_body="lone \ud800 surrogate",
        extra={"when": datetime(2025, 1, 1, tzinfo=UTC)},  # not JSON: stored as text
    )
    insert_records(engine, [record])
    loaded = get_request(engine, record.id)
    assert loaded is not None
    assert loaded.requested_model == "m" * 255
    assert loaded.error_message == "broken\ufffdstream"
    assert loaded.response_body == "lone ? surrogate"
    assert loaded.extra == {"when": "2025-01-01 00:00:00+00:00"}
