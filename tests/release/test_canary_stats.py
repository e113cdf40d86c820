"""The canary comparison from a request log and feedback written directly: each metric,
its test and threshold, and the verdict."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from scipy.stats import chi2_contingency
from sqlalchemy import Engine, insert

from keel.core import NotFound
from keel.feedback import feedback
from keel.release import ReleaseSettings, canary_report, promote, two_proportion_p
from keel.store import RequestRecord, insert_records
from tests.release.conftest import OPERATOR, passing_gate

SETTINGS = ReleaseSettings(min_requests=30)


def _log(
    engine: Engine,
    deployment: str,
    n: int,
    *,
    errors: int = 0,
    latency: float = 100.0,
    guarded: int = 0,
    scores: list[float] | None = None,
    at: datetime | None = None,
) -> None:
    rng = random.Random(deployment)
    records, given = [], []
    for i in range(n):
        record = RequestRecord(
            id=uuid.uuid4().hex,
            created_at=at or datetime.now(UTC),
            endpoint="chat.completions",
            requested_model="chat",
            status=502 if i < errors else 200,
            route="chat",
            deployment=deployment,
            latency_ms=latency * rng.uniform(0.8, 1.2),
            guards={"output": {"policy": "p", "decision": "flag" if i < guarded else "allow"}},
        )
        records.append(record)
        if scores is not None and i < len(scores):
            given.append(
                {
                    "id": uuid.uuid4().hex[:32],
                    "scope": "",
                    "request_id": record.id,
                    "created_at": datetime.now(UTC),
                    "source": "api",
                    "score_value": scores[i],
                    "body_hash": "x",
                }
            )
    insert_records(engine, records)
    if given:
        with engine.begin() as connection:
            connection.execute(insert(feedback), given)


def _canary(engine: Engine, share: float = 0.5) -> None:
    passing_gate(engine, "m", 2)
    promote(engine, route="chat", model="m", version=2, path="/m/2", share=share, actor=OPERATOR)


def test_two_proportion_p_matches_the_chi_square_test() -> None:
    for x1, n1, x2, n2 in ((12, 80, 4, 90), (30, 200, 21, 210), (5, 5, 0, 75)):
        chi2 = chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False)
        p = two_proportion_p(x1, n1, x2, n2)
        assert p == pytest.approx(chi2.pvalue / 2, rel=1e-6)
    assert two_proportion_p(0, 10, 0, 10) == 1.0
    assert two_proportion_p(1, 0, 0, 10) is None


def test_a_healthy_canary_and_the_requests_before_it(engine: Engine) -> None:
    # Traffic before the canary started is not compared (a slow past is not its fault).
    _log(engine, "prod", 50, errors=25, at=datetime.now(UTC) - timedelta(hours=1))
    _canary(engine)
    _log(engine, "m@v2", 40, scores=[1.0] * 20)
    _log(engine, "prod", 40, scores=[1.0] * 20)
    report = canary_report(engine, "chat", SETTINGS)
    assert (report.canary_requests, report.production_requests) == (40, 40)
    assert report.observed_share == 0.5 and report.production == "configured"
    assert report.verdict == "healthy" and report.reasons == ()
    checks = {c.name: c for c in report.checks}
    assert checks["error_rate"].production == 0.0
    assert checks["feedback_score"].canary == 1.0 and checks["feedback_score"].canary_n == 20


@pytest.mark.parametrize(
    ("canary", "metric"),
    [
        ({"errors": 8}, "error_rate"),
        ({"latency": 400.0}, "p95_latency_ms"),
        ({"guarded": 10}, "guard_rate"),
        ({"scores": [0.0] * 15 + [1.0] * 5}, "feedback_score"),
    ],
)
def test_each_metric_can_call_for_a_rollback(engine: Engine, canary: dict[str, object], metric: str) -> None:
    _canary(engine)
    _log(engine, "m@v2", 40, **canary)  # type: ignore[arg-type]
    _log(engine, "prod", 200, scores=[1.0] * 20)
    report = canary_report(engine, "chat", SETTINGS)
    assert report.verdict == "rollback"
    crossed = [c.name for c in report.checks if c.crossed]
    assert crossed == [metric]
    assert report.reasons[0].startswith(f"{metric}: canary")


def test_small_differences_or_few_requests_do_not_roll_back(engine: Engine) -> None:
    _canary(engine)
    # One error in 40 against none: over the 0.02 threshold, but not significant.
    _log(engine, "m@v2", 40, errors=1)
    _log(engine, "prod", 40)
    report = canary_report(engine, "chat", SETTINGS)
    errors = next(c for c in report.checks if c.name == "error_rate")
    assert errors.canary == 0.025 and errors.p_value is not None and errors.p_value > 0.05
    assert report.verdict == "healthy"
    few = canary_report(engine, "chat", ReleaseSettings(min_requests=100))
    assert few.verdict == "collecting"


def test_a_route_without_a_canary(engine: Engine) -> None:
    with pytest.raises(NotFound, match="no canary"):
        canary_report(engine, "chat", SETTINGS)
