"""`export_dataset`: SFT and preference datasets from feedback joined with the request log."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update

from keel.core import InvalidRequest
from keel.feedback import FeedbackInput, FeedbackStore, Giver, feedback
from keel.pipelines import (
    check_row,
    export_dataset,
    load_dataset_dir,
    load_preference_dataset,
    load_sft_dataset,
    read_manifest,
)
from tests.feedback.logs import log_chat


def give(engine: Engine, request_id: str, **body: Any) -> None:
    FeedbackStore(engine).submit(Giver(), FeedbackInput.from_json({"request_id": request_id, **body}))


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _all_rows(out: Path) -> list[dict[str, Any]]:
    return _lines(out / "train.jsonl") + _lines(out / "eval.jsonl")


def _preference_log(engine: Engine) -> dict[str, str]:
    """One request per way a preference row can arise."""
    ids = {
        "explicit": log_chat(engine, "Capital of France?", "Lyon.", system="Be brief."),
        "corrected": log_chat(engine, "2 + 2?", "5"),
        "good": log_chat(engine, "Colour of the sky?", "Blue."),
        "bad": log_chat(engine, "Colour of the sky?", "Green, obviously."),
        "arm_a": log_chat(engine, "Name a prime.", "7"),
        "arm_b": log_chat(engine, "Name a prime.", "8"),
    }
    give(engine, ids["explicit"], preference={"chosen": "Paris.", "rejected": "Lyon."})
    give(engine, ids["corrected"], correction="4")
    give(engine, ids["good"], score={"rating": 5})
    give(engine, ids["bad"], score={"rating": 2})
    give(engine, ids["arm_a"], preference={"chosen": ids["arm_a"], "rejected": ids["arm_b"]})
    return ids


def test_preference_export_in_trls_conversational_format(engine: Engine, tmp_path: Path) -> None:
    _preference_log(engine)
    out = tmp_path / "prefs"
    result = export_dataset(engine, out, kind="preference", eval_fraction=0.25)

    rows = _all_rows(out)
    for row in rows:
        check_row(row, "preference", "trl")
        assert set(row) == {"prompt", "chosen", "rejected"}
        assert row["prompt"][-1]["role"] == "user"
        assert [m["role"] for m in row["chosen"]] == ["assistant"] == [m["role"] for m in row["rejected"]]
    pairs = {
        (r["prompt"][-1]["content"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows
    }
    assert pairs == {
        ("Capital of France?", "Paris.", "Lyon."),
        ("2 + 2?", "4", "5"),
        ("Colour of the sky?", "Blue.", "Green, obviously."),
        ("Name a prime.", "7", "8"),
    }
    explicit = next(r for r in rows if r["chosen"][0]["content"] == "Paris.")
    assert explicit["prompt"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    manifest = result.manifest
    assert manifest == read_manifest(out)
    assert (
        manifest["kind"] == "preference" and manifest["format"] == "trl" and manifest["schema_version"] == 1
    )
    assert manifest["sources"] == {"correction": 1, "preference": 2, "rating_pair": 1}
    assert manifest["counts"]["train"] + manifest["counts"]["eval"] == manifest["counts"]["total"] == 4
    assert manifest["counts"]["eval"] >= 1 and manifest["counts"]["train"] >= 1
    assert manifest["selected_feedback"] == 5
    assert manifest["filters"]["redact"] is True
    train, evaluation = load_preference_dataset(out)
    assert len(train) == manifest["counts"]["train"] and len(evaluation) == manifest["counts"]["eval"]


def test_sft_export_takes_corrections_and_well_rated_answers(engine: Engine, tmp_path: Path) -> None:
    corrected = log_chat(engine, "2 + 2?", "5")
    liked = log_chat(engine, "Hello?", "Hi there!")
    disliked = log_chat(engine, "Joke?", "No.")
    mixed = log_chat(engine, "Weather?", "Sunny.")
    give(engine, corrected, correction="4", score={"thumbs": "down"})
    give(engine, liked, score={"thumbs": "up"})
    give(engine, disliked, score={"thumbs": "down"})
    give(engine, mixed, score={"rating": 5})
    give(engine, mixed, score={"rating": 1})  # averages 0.5: below min_score
    out = tmp_path / "sft"
    manifest = export_dataset(engine, out, kind="sft").manifest

    rows = _all_rows(out)
    for row in rows:
        check_row(row, "sft", "trl")
        assert set(row) == {"messages"} and row["messages"][-1]["role"] == "assistant"
    assert sorted((r["messages"][0]["content"], r["messages"][-1]["content"]) for r in rows) == [
        ("2 + 2?", "4"),
        ("Hello?", "Hi there!"),
    ]
    assert manifest["sources"] == {"correction": 1, "rated_answer": 1}
    assert manifest["skipped"] == {"score below min_score (sft)": 2}
    train, evaluation = load_sft_dataset(out)
    assert len(train) + len(evaluation) == 2
    loaded = load_dataset_dir(out)
    assert type(loaded).__name__ == "SftDataset" and loaded.id == manifest["id"]
    with pytest.raises(InvalidRequest, match="'sft' dataset, not a 'preference'"):
        load_preference_dataset(out)


def test_hh_format(engine: Engine, tmp_path: Path) -> None:
    _preference_log(engine)
    export_dataset(engine, tmp_path / "trl", kind="preference", seed=3)
    manifest = export_dataset(engine, tmp_path / "hh", kind="preference", fmt="hh", seed=3).manifest
    assert manifest["format"] == "hh"
    for row in _all_rows(tmp_path / "hh"):
        assert set(row) == {"chosen", "rejected"}
        for text in row.values():
            assert text.startswith("\n\nHuman: ") and text.count("\n\nAssistant: ") == 1
        assert (
            row["chosen"].rsplit("\n\nAssistant: ", 1)[0] == row["rejected"].rsplit("\n\nAssistant: ", 1)[0]
        )
    france = next(r for r in _all_rows(tmp_path / "hh") if "France" in r["chosen"])
    assert france == {
        "chosen": "\n\nHuman: Be brief.\n\nCapital of France?\n\nAssistant: Paris.",
        "rejected": "\n\nHuman: Be brief.\n\nCapital of France?\n\nAssistant: Lyon.",
    }
    # Read back as conversations: the same pairs as the TRL export (system folded into the user turn).
    hh_train, hh_eval = load_preference_dataset(tmp_path / "hh")
    trl_train, trl_eval = load_preference_dataset(tmp_path / "trl")
    assert len(hh_train) == len(trl_train) and len(hh_eval) == len(trl_eval)
    assert {r["chosen"][0]["content"] for r in hh_train} == {r["chosen"][0]["content"] for r in trl_train}
    with pytest.raises(InvalidRequest, match="HH-RLHF format holds preference pairs"):
        export_dataset(engine, tmp_path / "x", kind="sft", fmt="hh")


def test_duplicates_are_dropped(engine: Engine, tmp_path: Path) -> None:
    first = log_chat(engine, "2 + 2?", "5")
    second = log_chat(engine, "2  +  2?", "5")  # the same question, spaced differently
    third = log_chat(engine, "3 + 3?", "7")
    give(engine, first, correction="4")
    give(engine, second, correction="4")
    give(engine, first, correction="four")
    give(engine, third, correction="6")
    manifest = export_dataset(engine, tmp_path / "d", kind="preference").manifest
    assert manifest["duplicates"] == 1
    assert manifest["counts"]["total"] == 3
    contents = [json.dumps(r, sort_keys=True) for r in _all_rows(tmp_path / "d")]
    assert len(contents) == len(set(contents))


def test_personal_data_and_secrets_are_redacted(engine: Engine, tmp_path: Path) -> None:
    request_id = log_chat(
        engine, "Mail jane.doe@example.com about the invoice", "Mailed jane.doe@example.com."
    )
    secret = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0"
    other = log_chat(engine, f"My key is {secret}, is that ok?", "Never share keys.")
    give(engine, request_id, correction="I will write to jane.doe@example.com today.")
    give(engine, other, correction="Please rotate that key now.")
    out = tmp_path / "r"
    manifest = export_dataset(engine, out, kind="sft").manifest
    files = (out / "train.jsonl").read_text() + (out / "eval.jsonl").read_text()
    assert "jane.doe@example.com" not in files
    assert secret not in files
    assert "<EMAIL_1>" in files
    assert manifest["redacted_rows"] == 2
    # The same address in the question and the answer is one placeholder.
    row = next(r for r in _all_rows(out) if "invoice" in r["messages"][0]["content"])
    assert row["messages"][0]["content"] == "Mail <EMAIL_1> about the invoice"
    assert row["messages"][-1]["content"] == "I will write to <EMAIL_1> today."
    unredacted = export_dataset(engine, tmp_path / "raw", kind="sft", redact=False).manifest
    assert unredacted["id"] != manifest["id"]
    assert (
        "jane.doe@example.com"
        in (tmp_path / "raw" / "train.jsonl").read_text() + (tmp_path / "raw" / "eval.jsonl").read_text()
    )


def _many(engine: Engine, n: int = 30) -> None:
    for i in range(n):
        give(engine, log_chat(engine, f"question {i}", f"wrong {i}"), correction=f"right {i}")


def test_split_and_hash_are_deterministic(engine: Engine, tmp_path: Path) -> None:
    _many(engine)
    one = export_dataset(engine, tmp_path / "one", kind="preference", seed=5, eval_fraction=0.2).manifest
    two = export_dataset(engine, tmp_path / "two", kind="preference", seed=5, eval_fraction=0.2).manifest
    other = export_dataset(engine, tmp_path / "other", kind="preference", seed=6, eval_fraction=0.2).manifest
    for name in ("train.jsonl", "eval.jsonl"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert one["id"] == two["id"] and one["id"] != other["id"]
    assert one["created_at"] <= two["created_at"]
    assert 1 <= one["counts"]["eval"] < 15
    # The id is the hash of the files.
    digests = {
        n: hashlib.sha256((tmp_path / "one" / n).read_bytes()).hexdigest()
        for n in ("eval.jsonl", "train.jsonl")
    }
    assert {n: f["sha256"] for n, f in one["files"].items()} == digests
    joined = "".join(f"{n}:{digests[n]}\n" for n in sorted(digests))
    assert one["id"] == "sha256:" + hashlib.sha256(joined.encode()).hexdigest()
    # Same rows, split another way.
    one_rows = {json.dumps(r, sort_keys=True) for r in _all_rows(tmp_path / "one")}
    assert one_rows == {json.dumps(r, sort_keys=True) for r in _all_rows(tmp_path / "other")}
    # A row keeps its split as the data set grows.
    one_eval = {json.dumps(r, sort_keys=True) for r in _lines(tmp_path / "one" / "eval.jsonl")}
    give(engine, log_chat(engine, "one more", "wrong"), correction="right")
    grown = tmp_path / "grown"
    export_dataset(engine, grown, kind="preference", seed=5, eval_fraction=0.2)
    assert one_eval <= {json.dumps(r, sort_keys=True) for r in _lines(grown / "eval.jsonl")}
    # An edited file no longer loads.
    with (tmp_path / "two" / "train.jsonl").open("a") as f:
        f.write("\n")
    with pytest.raises(InvalidRequest, match="does not match its hash"):
        load_preference_dataset(tmp_path / "two")


def test_empty_selection_is_an_error_and_leaves_nothing(engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "datasets" / "empty"
    with pytest.raises(InvalidRequest, match="no feedback matches"):
        export_dataset(engine, out, kind="preference")
    assert not out.exists()
    # Feedback that gives no row of this kind: also an error, naming why.
    give(engine, log_chat(engine, "Joke?", "No."), score={"thumbs": "down"})
    with pytest.raises(InvalidRequest, match=r"none gives a sft row.*below min_score"):
        export_dataset(engine, out, kind="sft")
    assert not out.exists()
    # No staging directory left beside it either.
    assert not (tmp_path / "datasets").exists() or not any((tmp_path / "datasets").iterdir())
    with pytest.raises(InvalidRequest, match="no feedback matches route='other'"):
        export_dataset(engine, out, kind="preference", route="other")


def test_an_existing_directory_is_not_overwritten(engine: Engine, tmp_path: Path) -> None:
    give(engine, log_chat(engine, "2 + 2?", "5"), correction="4")
    out = tmp_path / "sets" / "d"
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InvalidRequest, match="already exists"):
        export_dataset(engine, out, kind="preference")
    assert (out / "keep.txt").read_text() == "mine"
    assert [p.name for p in (tmp_path / "sets").iterdir()] == ["d"]
    # An empty directory is fine.
    (out / "keep.txt").unlink()
    export_dataset(engine, out, kind="preference")
    assert sorted(p.name for p in out.iterdir()) == ["eval.jsonl", "manifest.json", "train.jsonl"]


def test_filters(engine: Engine, tmp_path: Path) -> None:
    old = log_chat(engine, "old question", "old wrong", route="chat")
    new = log_chat(engine, "new question", "new wrong", route="other")
    faq = log_chat(engine, "faq question", "faq wrong", route="chat", prompt_name="faq")
    for request_id in (old, new, faq):
        give(engine, request_id, correction="right")
    with engine.begin() as connection:
        earlier = datetime.now(UTC) - timedelta(days=10)
        connection.execute(update(feedback).where(feedback.c.request_id == old).values(created_at=earlier))

    def prompts(out: str, **filters: Any) -> set[str]:
        manifest = export_dataset(engine, tmp_path / out, kind="sft", **filters).manifest
        assert all(
            manifest["filters"][k] == (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in filters.items()
        )
        return {r["messages"][0]["content"] for r in _all_rows(tmp_path / out)}

    assert prompts("route", route="other") == {"new question"}
    assert prompts("since", since=datetime.now(UTC) - timedelta(days=1)) == {"new question", "faq question"}
    assert prompts("prompt", prompt="faq") == {"faq question"}


def test_feedback_through_the_api_becomes_a_dataset(stack: Any, tmp_path: Path) -> None:
    from keel.client._feedback import FeedbackClient

    _, key = stack.teams["red"]
    client = FeedbackClient(stack.feedback_url, key)
    a = stack.ask(key, "Which is better?")
    b = stack.ask(key, "Which is better, really?")
    client.send(a, id="pick-1", chosen=a, rejected=b)
    client.send(b, id="fix-1", correction="Neither: it depends.")
    out = tmp_path / "e2e"
    manifest = export_dataset(stack.gateway.app.engine, out, kind="preference").manifest
    train, evaluation = load_preference_dataset(out)
    rows = train + evaluation
    assert manifest["sources"] == {"correction": 1, "preference": 1}
    chosen = {r["chosen"][0]["content"]: r["rejected"][0]["content"] for r in rows}
    assert chosen == {
        "echo: Which is better?": "echo: Which is better, really?",
        "Neither: it depends.": "echo: Which is better, really?",
    }
