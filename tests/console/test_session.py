from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from keel.console import parse_range
from keel.console._session import SessionSigner
from keel.core import InvalidRequest


def test_a_session_round_trips_and_holds_only_the_key_id_and_expiry() -> None:
    signer = SessionSigner("s3cret", ttl_s=60)
    value, session = signer.issue("key_1", now=1000.0)
    assert signer.verify(value, now=1001.0) == session
    assert session.key_id == "key_1"
    assert session.expires_at == 1060.0
    assert "s3cret" not in value


def test_forged_tampered_and_expired_sessions_are_refused() -> None:
    signer = SessionSigner("s3cret", ttl_s=60)
    value, _ = signer.issue("key_1", now=1000.0)
    body, signature = value.split(".")
    other_body, _ = signer.issue("key_admin", now=1000.0)[0].split(".")
    assert signer.verify(f"{other_body}.{signature}", now=1001.0) is None  # another body, old signature
    assert signer.verify(f"{body}.{'0' * len(signature)}", now=1001.0) is None
    assert signer.verify(value, now=1060.0) is None  # expired
    assert SessionSigner("another", ttl_s=60).verify(value, now=1001.0) is None
    assert signer.verify("garbage", now=1001.0) is None
    assert signer.verify(None) is None


def test_without_a_secret_each_process_signs_with_its_own() -> None:
    value, _ = SessionSigner(None, 60).issue("key_1")
    assert SessionSigner(None, 60).verify(value) is None


def test_ranges_cut_into_a_few_dozen_aligned_buckets() -> None:
    now = datetime(2026, 11, 20, 12, 34, tzinfo=UTC)
    day = parse_range({}, now)
    assert day.name == "24h"
    assert day.since == now - timedelta(hours=24)
    assert (day.unit, day.per_bucket) == ("minute", 30)
    month = parse_range({"range": "30d"}, now)
    assert (month.unit, month.per_bucket) == ("hour", 12)
    starts = month.bucket_starts()
    assert starts[0] <= month.since < starts[0] + month.bucket
    assert len(starts) <= 61
    custom = parse_range({"range": "custom", "from": "2026-11-13T12:00", "to": "2026-11-20T12:00"}, now)
    assert (custom.unit, custom.per_bucket) == ("hour", 3)
    assert len(custom.bucket_starts()) == 56


@pytest.mark.parametrize(
    "params",
    [
        {"range": "2w"},
        {"range": "custom"},
        {"range": "custom", "from": "yesterday"},
        {"range": "custom", "from": "2026-11-20T12:00", "to": "2026-11-19T12:00"},
    ],
)
def test_bad_ranges_are_refused_with_a_reason(params: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest):
        parse_range(params)
