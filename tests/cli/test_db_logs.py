"""``keel db upgrade`` and ``keel logs`` against a real SQLite file chosen by KEEL_DATABASE_URL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.cli.helpers import keel, sqlite_engine

from keel.cli._logs import parse_since
from keel.core import InvalidRequest
from keel.store import RequestRecord, head_revision, insert_records


def record(n: int, minutes_ago: float, model: str, status: int = 200, stream: bool = False) -> RequestRecord:
    return RequestRecord(
        id=f"req-{n}",
        created_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
        endpoint="chat.completions",
        requested_model=model,
        status=status,
        stream=stream,
        deployment=f"fake/{model}",
        attempts=1,
        error_type="upstream_error" if status >= 400 else None,
        latency_ms=42.0,
        input_tokens=7,
        output_tokens=2,
        usage_source="reported",
    )


@pytest.fixture
def logged(database: Path) -> None:
    code, _, _ = keel("db", "upgrade")
    assert code == 0
    with sqlite_engine(database) as engine:
        insert_records(
            engine,
            [
                record(1, 180, model="alpha"),
                record(2, 20, model="beta", status=502),
                record(3, 10, model="alpha", stream=True),
                record(4, 5, model="beta"),
            ],
        )


def logged_ids(*args: str) -> list[str]:
    code, out, err = keel("logs", "--json", *args)
    assert code == 0, err
    return [row["id"] for row in json.loads(out)]


def test_db_upgrade_creates_the_schema_once(database: Path) -> None:
    code, out, _ = keel("db", "upgrade")
    assert code == 0
    assert database.exists()
    assert f"to revision {head_revision()}" in out
    code, out, _ = keel("db", "upgrade")
    assert code == 0
    assert f"already at revision {head_revision()}" in out


def test_logs_json_lists_newest_first_with_filters(logged: None) -> None:
    assert logged_ids() == ["req-4", "req-3", "req-2", "req-1"]
    assert logged_ids("--model", "beta") == ["req-4", "req-2"]
    assert logged_ids("--status", "error") == ["req-2"]
    assert logged_ids("--status", "200", "--model", "alpha") == ["req-3", "req-1"]
    assert logged_ids("--since", "1h") == ["req-4", "req-3", "req-2"]
    assert logged_ids("--since", "15m", "--limit", "1") == ["req-4"]


def test_logs_json_carries_whole_records(logged: None) -> None:
    code, out, _ = keel("logs", "--json", "--limit", "1")
    assert code == 0
    (row,) = json.loads(out)
    assert row["requested_model"] == "beta"
    assert row["usage_source"] == "reported"
    assert datetime.fromisoformat(row["created_at"]).tzinfo is not None


def test_logs_table_shows_each_request(logged: None) -> None:
    code, out, _ = keel("logs")
    assert code == 0
    for column in (
        "time (UTC)",
        "deployment",
        "latency ms",
        "ttft ms",
        "tokens in",
        "cached",
        "usage",
        "stream",
    ):
        assert column in out
    for n in range(1, 5):
        assert f"req-{n}" in out
    assert "fake/beta" in out


def test_bad_since_is_one_line_and_a_failure(database: Path) -> None:
    code, out, err = keel("logs", "--since", "yesterday")
    assert code != 0
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: --since")


def test_logs_before_upgrade_says_what_to_do_and_creates_nothing(database: Path) -> None:
    code, _, err = keel("logs")
    assert code == 1
    assert "keel db upgrade" in err
    assert not database.exists()


def test_unreachable_database_is_one_line_and_a_failure(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("KEEL_DATABASE_URL", f"postgresql://keel:secret@127.0.0.1:{port}/keel")
    for command in (["logs"], ["db", "upgrade"]):
        code, _, err = keel(*command)
        assert code == 1
        assert err.count("\n") == 1
        assert err.startswith("error: database postgresql://keel:***@127.0.0.1")
        assert "secret" not in err


def test_installed_command_exits_non_zero_on_bad_input(database: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from keel.cli import main; main()", "logs", "--since", "3 parsecs"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: --since")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", datetime(2025, 3, 1, 11, 30, tzinfo=UTC)),
        ("1h", datetime(2025, 3, 1, 11, 0, tzinfo=UTC)),
        ("2d", datetime(2025, 2, 27, 12, 0, tzinfo=UTC)),
        ("2025-03-01T10:00:00+02:00", datetime(2025, 3, 1, 8, 0, tzinfo=UTC)),
        ("2025-03-01T10:00:00Z", datetime(2025, 3, 1, 10, 0, tzinfo=UTC)),
        ("2025-03-01 10:00", datetime(2025, 3, 1, 10, 0, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    assert parse_since(text, now=datetime(2025, 3, 1, 12, 0, tzinfo=UTC)) == expected


@pytest.mark.parametrize("text", ["", "1y", "-5m", "soon", "99999999999d"])
def test_parse_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(InvalidRequest, match="--since"):
        parse_since(text, now=datetime(2025, 3, 1, 12, 0, tzinfo=UTC))
