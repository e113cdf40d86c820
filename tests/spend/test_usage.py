from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from keel.core import InvalidRequest
from keel.spend import parse_moment, usage_csv, usage_report
from keel.store import insert_records
from tests.store.conftest import make_record

DAY1 = datetime(2025, 3, 1, 23, 59, tzinfo=UTC)
DAY2 = datetime(2025, 3, 2, 0, 1, tzinfo=UTC)


@pytest.fixture
def logged(engine: Engine) -> Engine:
    insert_records(
        engine,
        [
            make_record(
                1, created_at=DAY1, team_id="t1", key_id="k1", requested_model="gpt-4o", cost_nanos=1_000
            ),
            make_record(
                2, created_at=DAY2, team_id="t1", key_id="k1", requested_model="gpt-4o", cost_nanos=2_500
            ),
            make_record(
                3,
                created_at=DAY2,
                team_id="t1",
                key_id="k2",
                requested_model="gpt-4o",
                cost_nanos=0,
                cache_status="hit",
                cost_saved_nanos=2_500,
            ),
            make_record(
                4, created_at=DAY2, team_id="t1", key_id="k2", requested_model="local", cost_nanos=None
            ),
            make_record(
                5,
                created_at=DAY2,
                team_id="t2",
                key_id="k3",
                end_user="u1",
                requested_model="gpt-4o",
                cost_nanos=7,
            ),
        ],
    )
    return engine


def test_usage_by_team_and_model(logged: Engine) -> None:
    rows = usage_report(logged, group_by=["team", "model"])
    assert [
        (r.group, r.requests, r.cost_nanos, r.saved_nanos, r.cache_hits, r.unpriced_requests) for r in rows
    ] == [
        ({"team": "t1", "model": "gpt-4o"}, 3, 3_500, 2_500, 1, 0),
        ({"team": "t2", "model": "gpt-4o"}, 1, 7, 0, 0, 0),
        ({"team": "t1", "model": "local"}, 1, 0, 0, 0, 1),
    ]
    assert rows[0].input_tokens == 30 and rows[0].output_tokens == 9


def test_usage_by_utc_day_with_a_time_range_and_team(logged: Engine) -> None:
    rows = usage_report(logged, group_by=["day"], team_id="t1")
    assert {r.group["day"]: (r.requests, r.cost_nanos) for r in rows} == {
        "2025-03-01": (1, 1_000),
        "2025-03-02": (3, 2_500),
    }
    since = usage_report(logged, group_by=["key"], since=DAY2, until=DAY2 + timedelta(minutes=1))
    assert {r.group["key"]: r.requests for r in since} == {"k1": 1, "k2": 2, "k3": 1}


def test_usage_totals_without_groups_and_csv(logged: Engine) -> None:
    (total,) = usage_report(logged)
    assert (total.requests, total.cost_nanos, total.saved_nanos) == (5, 3_507, 2_500)
    assert usage_report(logged, since=DAY2 + timedelta(days=1)) == []
    rows = usage_report(logged, group_by=["user"], team_id="t2")
    lines = usage_csv(rows, ["user"]).splitlines()
    assert lines[0].startswith("user,requests,input_tokens")
    assert lines[1].startswith("u1,1,10,0,3,7,0.000000007,0,0,0,0")


def test_bad_groups_and_times_are_clear_errors() -> None:
    with pytest.raises(InvalidRequest, match="Cannot group usage by 'region'"):
        usage_report(None, group_by=["region"])  # type: ignore[arg-type, list-item]
    with pytest.raises(InvalidRequest, match="since takes a duration"):
        parse_moment("yesterday", datetime.now(UTC))
    assert parse_moment("7d", DAY2) == DAY2 - timedelta(days=7)
