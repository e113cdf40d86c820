"""``keel budgets``, ``keel prices`` and ``keel usage`` on a real SQLite file chosen by
KEEL_DATABASE_URL."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Table, func, select
from tests.cli.helpers import keel, sqlite_engine
from tests.store.conftest import make_record

from keel.access import AccessAdmin, Actor
from keel.spend import budgets, rate_limits
from keel.store import audit_log, insert_records, upgrade


@pytest.fixture
def team_id(database: Path) -> str:
    with sqlite_engine(database) as engine:
        upgrade(engine)
        return AccessAdmin(engine).create_team(Actor.cli(), "research").id


def assert_nothing_written(database: Path, table: Table, target_type: str) -> None:
    """No row in ``table``, and no audit entry on a ``target_type``."""
    with sqlite_engine(database) as engine, engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(table)).scalar_one() == 0
        audited = select(func.count()).select_from(audit_log).where(audit_log.c.target_type == target_type)
        assert connection.execute(audited).scalar_one() == 0


def test_budgets_set_list_and_delete(team_id: str) -> None:
    code, out, err = keel(
        "budgets", "set", "--scope", "team", "--id", "research", "--limit", "12.50", "--json"
    )
    assert code == 0, err
    made = json.loads(out)
    assert (made["scope_id"], made["limit_nanos"], made["hard"], made["period"]) == (
        team_id,
        12_500_000_000,
        True,
        "month",
    )
    code, out, _ = keel(
        "budgets", "set", "--scope", "model", "--id", "gpt-4o", "--limit", "3", "--soft", "--period", "day"
    )
    assert code == 0 and "soft day budget of $3 on model gpt-4o" in out
    code, out, _ = keel("budgets", "list")
    assert code == 0 and "research" not in out and team_id in out and "12.5" in out
    code, out, _ = keel("budgets", "list", "--json", "--team", "research")
    assert [b["spent_nanos"] for b in json.loads(out)] == [0]
    code, out, _ = keel("budgets", "delete", made["id"])
    assert code == 0 and f"deleted {made['id']}" in out
    code, _, err = keel("budgets", "delete", made["id"])
    assert code == 1 and f"No budget '{made['id']}'" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--scope", "team", "--id", "nobody", "--limit", "5"), "No team named or with id 'nobody'"),
        (("--scope", "team", "--id", "research", "--limit", "-5"), "cannot be negative"),
        (("--scope", "key", "--id", "key_missing", "--limit", "5"), "No key with id 'key_missing'"),
        (("--scope", "org", "--id", "x", "--limit", "5"), "Unknown budget scope 'org'"),
    ],
)
def test_bad_budgets_are_one_line_errors_and_write_nothing(
    team_id: str, database: Path, args: tuple[str, ...], message: str
) -> None:
    code, _, err = keel("budgets", "set", *args)
    assert code == 1 and err.startswith("error: ") and message in err
    assert_nothing_written(database, budgets, "budget")


def test_prices_list_and_set(database: Path) -> None:
    code, out, _ = keel("prices", "list", "--model", "claude-3-5-sonnet-20241022", "--json")
    assert code == 0
    assert {p["token_type"]: p["usd_per_million"] for p in json.loads(out)} == {
        "input": "3",
        "cached_input": "0.3",
        "output": "15",
    }
    code, out, err = keel("prices", "set", "claude-3-5-sonnet", "output", "14", "--from", "2030-01-01")
    assert code == 0, err
    code, out, _ = keel("prices", "list", "--model", "claude-3-5-sonnet", "--at", "2030-02-01", "--json")
    assert {p["token_type"]: p["source"] for p in json.loads(out)}["output"] == "api"
    code, _, err = keel("prices", "set", "m", "reasoning", "1")
    assert code == 1 and "Unknown token type 'reasoning'" in err
    code, out, _ = keel("prices", "list")
    assert code == 0 and "gpt-4o-mini" in out


def test_usage_as_table_json_and_csv(team_id: str, database: Path) -> None:
    with sqlite_engine(database) as engine:
        now = datetime.now(UTC)
        insert_records(
            engine,
            [
                make_record(
                    1, created_at=now, team_id=team_id, requested_model="gpt-4o", cost_nanos=1_500_000
                ),
                make_record(2, created_at=now, team_id=team_id, requested_model="gpt-4o", cost_nanos=500_000),
            ],
        )
    code, out, _ = keel("usage", "--by", "team,model", "--since", "7d", "--format", "json")
    assert code == 0
    (row,) = json.loads(out)
    assert (row["team"], row["model"], row["requests"], row["cost_usd"]) == (team_id, "gpt-4o", 2, "0.002")
    code, out, _ = keel("usage", "--by", "model", "--format", "csv", "--team", "research")
    assert next(iter(csv.DictReader(io.StringIO(out))))["cost_nanos"] == "2000000"
    code, out, _ = keel("usage", "--by", "day")
    assert code == 0 and now.strftime("%Y-%m-%d") in out and "0.002" in out
    code, _, err = keel("usage", "--by", "region")
    assert code == 1 and "Cannot group usage by 'region'" in err
    code, _, err = keel("usage", "--format", "xml")
    assert code == 1 and "--format takes table, json or csv" in err


def _key_id(database: Path, team_id: str) -> str:
    with sqlite_engine(database) as engine:
        return AccessAdmin(engine).create_key(Actor.cli(), name="bot", role="member", team_id=team_id).key.id


def test_limits_set_list_and_delete(team_id: str, database: Path) -> None:
    code, out, err = keel("limits", "set", "--team", "research", "--rpm", "60", "--tpm", "90000", "--json")
    assert code == 0, err
    made = json.loads(out)
    assert (made["scope"], made["scope_id"], made["rpm"], made["tpm"], made["team_id"]) == (
        "team",
        team_id,
        60,
        90_000,
        team_id,
    )
    assert made["created_by"].startswith("cli:")
    key_id = _key_id(database, team_id)
    code, out, err = keel("limits", "set", "--key", key_id, "--tpm", "500")
    assert code == 0, err
    assert f": 500 tokens per minute on key {key_id}" in out
    code, out, _ = keel("limits", "set", "--key", key_id, "--rpm", "5")
    assert code == 0 and f"5 requests per minute on key {key_id}" in out
    code, out, _ = keel("limits", "list", "--json")
    listed = {(limit["scope"], limit["rpm"], limit["tpm"], limit["team_id"]) for limit in json.loads(out)}
    assert listed == {("team", 60, 90_000, team_id), ("key", 5, None, team_id)}
    code, out, _ = keel("limits", "list")
    assert code == 0 and made["id"] in out and "90000" in out and key_id in out
    code, out, _ = keel("limits", "delete", made["id"])
    assert code == 0 and f"deleted {made['id']}" in out
    code, _, err = keel("limits", "delete", made["id"])
    assert code == 1 and f"No rate limit '{made['id']}'" in err
    code, out, _ = keel("limits", "list", "--team", "research", "--json")
    assert [limit["scope"] for limit in json.loads(out)] == ["key"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--team", "nobody", "--rpm", "5"), "No team named or with id 'nobody'"),
        (("--key", "key_missing", "--rpm", "5"), "No key with id 'key_missing'"),
        (("--team", "research", "--rpm", "0"), "rpm must be a whole number more than zero"),
        (("--team", "research", "--tpm", "-3"), "tpm must be"),
        (
            (
                "--team",
                "research",
            ),
            "needs rpm, tpm or both",
        ),
        (
            (
                "--rpm",
                "5",
            ),
            "exactly one of --key",
        ),
        (("--team", "research", "--key", "k", "--rpm", "5"), "exactly one of --key"),
    ],
)
def test_bad_limits_are_one_line_errors_and_write_nothing(
    team_id: str, database: Path, args: tuple[str, ...], message: str
) -> None:
    code, _, err = keel("limits", "set", *args)
    assert code == 1 and err.startswith("error: ") and message in err
    assert_nothing_written(database, rate_limits, "rate_limit")
