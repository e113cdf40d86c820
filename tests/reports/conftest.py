"""A store seeded for November 2026: two teams (alpha, beta) with keys, requests across
models and days (and some in October and December that the report must leave out),
budgets, guard verdicts and eval runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from keel.access import AccessAdmin, Actor
from keel.evals import eval_results, eval_runs
from keel.spend import set_budget
from keel.store import RequestRecord, insert_records

USD = 1_000_000_000
SECRET_EMAIL = "bob.secret@example.com"


@dataclass(frozen=True)
class Seeded:
    alpha: str
    beta: str
    alpha_key: str
    beta_key: str


def _at(day: int, hour: int = 12, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def _record(
    n: int, at: datetime, team: str | None, key: str | None, model: str, cost: int | None, **more: Any
):  # type: ignore[no-untyped-def]
    return RequestRecord(
        id=f"req-{n:04d}",
        created_at=at,
        endpoint="chat.completions",
        requested_model=model,
        status=more.pop("status", 200),
        attempts=1,
        input_tokens=more.pop("input_tokens", 100),
        output_tokens=more.pop("output_tokens", 20),
        key_id=key,
        team_id=team,
        cost_nanos=cost,
        **more,
    )


def _guards(stage: str, policy: str, decision: str, scanner: str, reason: str) -> dict[str, object]:
    return {
        stage: {
            "policy": policy,
            "stage": stage,
            "decision": decision,
            "results": [
                {
                    "scanner": scanner,
                    "verdict": "block" if decision != "flag" else "flag",
                    "score": 0.99,
                    "spans": [{"entity": "EMAIL", "start": 11, "end": 33}],
                    "reason": reason,
                }
            ],
            "scanners": [scanner],
            "redacted": [],
        }
    }


ALLOWED = {
    "input": {"policy": "strict", "stage": "input", "decision": "allow", "results": [], "scanners": ["pii"]}
}


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    access, cli = AccessAdmin(engine), Actor.cli()
    alpha = access.create_team(cli, "alpha").id
    beta = access.create_team(cli, "beta").id
    access.create_team(cli, "gamma")  # no activity: a section with nothing in it
    alpha_key = access.create_key(cli, name="alpha-app", role="service", team_id=alpha).key.id
    beta_key = access.create_key(cli, name="beta-batch", role="service", team_id=beta).key.id
    body = f'{{"messages":[{{"role":"user","content":"mail me at {SECRET_EMAIL}"}}]}}'
    records = [
        # alpha, November: gpt-4o $2 on the 1st, $2 + $2 on the 2nd; mini $0.50 on the 3rd.
        _record(1, _at(1), alpha, alpha_key, "gpt-4o", 2 * USD, guards=ALLOWED),
        _record(
            2,
            _at(2, 9),
            alpha,
            alpha_key,
            "gpt-4o",
            2 * USD,
            request_body=body,
            guards=_guards("input", "strict", "block", "pii", "EMAIL"),
        ),
        _record(
            3,
            _at(2, 15),
            alpha,
            alpha_key,
            "gpt-4o",
            2 * USD,
            guards=_guards("output", "strict", "flag", "toxicity", "insult"),
        ),
        _record(4, _at(3), alpha, alpha_key, "mini", USD // 2),
        # A cache hit: free, saved $1.
        _record(5, _at(3, 13), alpha, alpha_key, "gpt-4o", 0, cache_status="hit", cost_saved_nanos=USD),
        # An error: no cost.
        _record(
            6, _at(4), alpha, alpha_key, "gpt-4o", None, status=502, input_tokens=None, output_tokens=None
        ),
        # beta: claude $10 on the 10th, redacted by policy "lenient".
        _record(
            7,
            _at(10),
            beta,
            beta_key,
            "claude-3-5-sonnet",
            10 * USD,
            guards=_guards("input", "lenient", "redact", "pii", "PHONE"),
        ),
        # Outside the month: must not count.
        _record(
            8,
            _at(31, 23, month=10),
            alpha,
            alpha_key,
            "gpt-4o",
            100 * USD,
            guards=_guards("input", "strict", "block", "pii", "EMAIL"),
        ),
        _record(9, datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC), beta, beta_key, "gpt-4o", 100 * USD),
        # No team.
        _record(10, _at(20), None, None, "mini", USD),
    ]
    insert_records(engine, records)
    set_budget(engine, scope="team", scope_id=alpha, period="month", limit_nanos=10 * USD, actor="test")
    set_budget(engine, scope="team", scope_id=alpha, period="day", limit_nanos=3 * USD, actor="test")
    set_budget(engine, scope="team", scope_id=beta, period="month", limit_nanos=8 * USD, actor="test")
    set_budget(engine, scope="model", scope_id="gpt-4o", period="month", limit_nanos=100 * USD, actor="test")
    with engine.begin() as connection:
        for run_id, created, passed in (
            ("run-gate-failed", _at(5), False),
            ("run-gate-passed", _at(6), True),
            ("run-october", _at(15, month=10), True),
        ):
            connection.execute(
                insert(eval_runs).values(
                    id=run_id,
                    suite="support-bot",
                    created_at=created,
                    finished_at=created,
                    status="complete",
                    config={},
                    summary={},
                    cost_nanos=USD // 10,
                    gate_passed=passed,
                )
            )
        # The failed run's one cell was answered by alpha's request 1.
        connection.execute(
            insert(eval_results).values(
                run_id="run-gate-failed",
                case_id="c1",
                variant="v",
                repeat=0,
                cache_key="k",
                created_at=_at(5),
                output={},
                scores={},
                cost_nanos=0,
                request_id="req-0001",
            )
        )
    return Seeded(alpha, beta, alpha_key, beta_key)
