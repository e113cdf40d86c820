"""Annotation queues: sampling, assignment, reviews, agreement; and `keel data queue`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from keel.cli import _data
from keel.core import InvalidRequest, NotFound
from keel.feedback import (
    FeedbackInput,
    assign,
    cohen_kappa,
    create_queue,
    feedback,
    krippendorff_alpha,
    next_items,
    queue_status,
    submit_review,
)
from tests.feedback.logs import log_chat


def _seed(engine: Engine, n: int = 8) -> list[str]:
    return [log_chat(engine, f"question {i}", f"answer {i}") for i in range(n)]


def test_a_queue_samples_reviewable_requests_deterministically(engine: Engine) -> None:
    ids = _seed(engine)
    log_chat(engine, "failed", "x", status=500)
    log_chat(engine, "named", "x", body={"model": "prompt:faq@production", "prompt": {"variables": {}}})
    first = create_queue(engine, "q1", size=5, seed=1)
    create_queue(engine, "q2", size=5, seed=1)
    create_queue(engine, "q3", size=5, seed=2)

    def items(name: str) -> list[str]:
        assign(engine, name, ["ann"])
        return [item.request_id for item in next_items(engine, name, "ann", limit=100)]

    assert first.items == 5
    assert items("q1") == items("q2")
    assert set(items("q1")) <= set(ids)  # the failed and the unexpanded prompt request are not reviewable
    assert items("q3") != items("q1")
    whole = create_queue(engine, "all", size=100)
    assert whole.items == len(ids)


def test_bad_queues_are_refused(engine: Engine) -> None:
    with pytest.raises(InvalidRequest, match="no logged chat requests"):
        create_queue(engine, "empty", size=3)
    _seed(engine, 2)
    create_queue(engine, "q", size=2, reviewers_per_item=2)
    with pytest.raises(InvalidRequest, match="exists already"):
        create_queue(engine, "q", size=2)
    with pytest.raises(InvalidRequest, match="needs 2 reviewers"):
        assign(engine, "q", ["ann"])
    with pytest.raises(NotFound):
        assign(engine, "nope", ["ann"])


def test_assignment_is_even_and_idempotent(engine: Engine) -> None:
    _seed(engine, 6)
    create_queue(engine, "q", size=6, reviewers_per_item=2)
    assert assign(engine, "q", ["ann", "bob", "cy"]) == 12
    assert assign(engine, "q", ["ann", "bob", "cy"]) == 0
    status = queue_status(engine, "q")
    assert {r: c["assigned"] for r, c in status.reviewers.items()} == {"ann": 4, "bob": 4, "cy": 4}
    for reviewer in ("ann", "bob", "cy"):
        items = next_items(engine, "q", reviewer, limit=100)
        assert len({item.request_id for item in items}) == 4
        assert items[0].messages[-1]["role"] == "user" and items[0].answer.startswith("answer")


def test_reviews_are_feedback_and_agreement_is_reported(engine: Engine) -> None:
    ids = _seed(engine, 4)
    create_queue(engine, "q", size=4, reviewers_per_item=2)
    assign(engine, "q", ["ann", "bob"])
    ann = ["up", "up", "down", "down"]
    bob = ["up", "down", "down", "down"]
    ratings_ann, ratings_bob = [5, 4, 2, 1], [4, 4, 1, 2]
    for i, request_id in enumerate(sorted(ids)):
        for reviewer, thumbs, rating in (("ann", ann[i], ratings_ann[i]), ("bob", bob[i], ratings_bob[i])):
            body = {"request_id": request_id, "score": {"thumbs": thumbs, "rating": rating}}
            submit_review(engine, "q", reviewer, FeedbackInput.from_json(body))
    # Reviewing again replaces the earlier review (bob changes his mind on the first item and back).
    first = sorted(ids)[0]
    submit_review(
        engine, "q", "bob", FeedbackInput.from_json({"request_id": first, "score": {"thumbs": "down"}})
    )
    submit_review(
        engine,
        "q",
        "bob",
        FeedbackInput.from_json({"request_id": first, "score": {"thumbs": "up", "rating": 4}}),
    )
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(feedback)).scalar_one() == 8

    status = queue_status(engine, "q")
    assert status.done == status.assigned == 8
    by_score = {a.score: a for a in status.agreement}
    assert by_score["thumbs"].kappa == pytest.approx(cohen_kappa(ann, bob))
    # p_o = 3/4, p_e = (2·1 + 2·3)/16 = 0.5: kappa 0.5
    assert by_score["thumbs"].kappa == pytest.approx(0.5)
    assert by_score["rating"].level == "interval"
    expected = krippendorff_alpha([[a, b] for a, b in zip(ratings_ann, ratings_bob, strict=True)], "interval")
    assert by_score["rating"].alpha == pytest.approx(expected)
    assert next_items(engine, "q", "ann") == []


def test_only_assigned_reviewers_may_review(engine: Engine) -> None:
    ids = _seed(engine, 2)
    create_queue(engine, "q", size=2)
    assign(engine, "q", ["ann"])
    with pytest.raises(NotFound, match="not assigned to 'bob'"):
        submit_review(
            engine, "q", "bob", FeedbackInput.from_json({"request_id": ids[0], "score": {"rating": 3}})
        )


def _cli(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    _data.register(app)
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_queue_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keel.store import create_store_engine, upgrade

    url = f"sqlite:///{tmp_path / 'keel.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEEL_CONFIG", raising=False)
    monkeypatch.setenv("KEEL_HOME", str(tmp_path))
    monkeypatch.setenv("KEEL_DATABASE_URL", url)
    engine = create_store_engine(url)
    upgrade(engine)
    ids = _seed(engine, 3)
    engine.dispose()

    code, out = _cli("data", "queue", "create", "triage", "--size", "3", "--reviewers-per-item", "2")
    assert code == 0, out
    assert "3 requests" in out
    code, out = _cli("data", "queue", "assign", "triage", "ann", "bob")
    assert code == 0 and "made 6 assignments" in out
    for request_id in ids:
        for reviewer in ("ann", "bob"):
            code, out = _cli(
                "data",
                "queue",
                "review",
                "triage",
                "--reviewer",
                reviewer,
                "--request",
                request_id,
                "--thumbs",
                "up",
            )
            assert code == 0, out
    code, out = _cli("data", "queue", "status", "triage", "--json")
    assert code == 0, out
    status = json.loads(out)
    assert status["done"] == 6 and status["reviewers"]["ann"] == {"assigned": 3, "done": 3}
    assert status["agreement"][0]["score"] == "thumbs"
    code, out = _cli("data", "queue", "status", "triage")
    assert code == 0 and "ann" in out and "Krippendorff" in out
    code, out = _cli("data", "queue", "status", "missing")
    assert code == 1
