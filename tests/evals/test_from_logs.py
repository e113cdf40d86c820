"""``export_from_logs`` and ``write_dataset``: logged chat requests into a dataset to label.

The log is seeded through the store's own insert path; the forms of logged body are
the gateway's (a prompt request as received, an expanded body when a guard policy
redacted it, a stream's summary as the response). One test goes through a real gateway
to pin down which form a prompt request is logged in.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from keel.core import InvalidRequest
from keel.evals._dataset_writer import write_dataset
from keel.evals._from_logs import (
    SKIP_NO_ANSWER,
    SKIP_NO_BODY,
    SKIP_TRUNCATED,
    ExportResult,
    export_from_logs,
)
from keel.feedback import feedback as feedback_table
from keel.store import RequestRecord, insert_records
from tests.fakes import FakeDeployment
from tests.gateway.conftest import GatewayFactory, gateway_factory  # noqa: F401 (fixture)

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
ROW_KEYS = {"id", "vars", "messages", "expected", "tags", "meta"}


def chat(*texts: str, system: str | None = None, model: str = "gpt-test", **fields: Any) -> str:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": t} for t in texts]
    return json.dumps({"model": model, "messages": messages, **fields})


def answer(text: str | None, **message: Any) -> str:
    return json.dumps(
        {"id": "c1", "choices": [{"index": 0, "message": {"role": "assistant", "content": text, **message}}]}
    )


def record(n: int, request: str | None, response: str | None, **fields: Any) -> RequestRecord:
    """A logged chat request, ``n`` seconds after T0."""
    values: dict[str, Any] = {
        "id": f"req-{n:04d}",
        "created_at": T0 + timedelta(seconds=n),
        "endpoint": "chat.completions",
        "requested_model": "gpt-test",
        "status": 200,
        "route": "gpt-test",
        "request_body": request,
        "response_body": response,
        **fields,
    }
    return RequestRecord(**values)


def seed(engine: Engine, *records: RequestRecord) -> None:
    insert_records(engine, records)


def by_request(result: ExportResult) -> dict[str, dict[str, Any]]:
    return {row["meta"]["request_id"]: row for row in result.rows}


# --- selecting and reading ------------------------------------------------------------------


def test_a_plain_chat_request_becomes_a_messages_row(engine: Engine) -> None:
    seed(engine, record(1, chat("What is Keel?", system="Be brief."), answer("A gateway.")))
    result = export_from_logs(engine)
    [row] = result.rows
    assert set(row) == ROW_KEYS
    assert row["vars"] == {}
    assert row["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is Keel?"},
    ]
    assert row["expected"] == "A gateway."
    assert row["tags"] == []
    assert row["meta"] == {
        "request_id": "req-0001",
        "model": "gpt-test",
        "route": "gpt-test",
        "prompt": None,
        "created_at": (T0 + timedelta(seconds=1)).isoformat(),
    }
    assert len(row["id"]) == 16 and int(row["id"], 16) >= 0
    assert (result.selected, result.written, result.duplicates, result.redacted) == (1, 1, 0, 0)


def test_a_prompt_request_as_logged_gives_its_variables_and_history(engine: Engine) -> None:
    by_field = json.dumps(
        {"model": "gpt-test", "messages": [], "prompt": {"name": "support", "variables": {"question": "Q1"}}}
    )
    by_alias = json.dumps(
        {
            "model": "prompt:support@production",
            "messages": [{"role": "user", "content": "earlier"}],
            "prompt": {"variables": {"question": "Q2", "product": "Acme"}},
        }
    )
    seed(
        engine,
        record(1, by_field, answer("A1"), prompt_name="support", prompt_version=2),
        record(2, by_alias, answer("A2"), prompt_name="support", prompt_version=3),
    )
    rows = by_request(export_from_logs(engine))
    first, second = rows["req-0001"], rows["req-0002"]
    assert first["vars"] == {"question": "Q1"} and "messages" not in first
    assert first["meta"]["prompt"] == "support#2"
    assert second["vars"] == {"question": "Q2", "product": "Acme"}
    assert second["messages"] == [{"role": "user", "content": "earlier"}]
    assert second["meta"]["prompt"] == "support#3"
    assert "prompt_expanded" not in first["meta"]


def test_an_expanded_body_logged_by_a_redacting_policy_keeps_its_messages(engine: Engine) -> None:
    # The gateway logs the expanded, redacted body in place of the one received.
    expanded = chat("Mail <EMAIL_1> or ann@example.org", system="You answer about Keel.")
    seed(engine, record(1, expanded, answer("Done."), prompt_name="support", prompt_version=1))
    [row] = export_from_logs(engine).rows
    assert row["vars"] == {}
    assert row["meta"]["prompt_expanded"] is True
    assert row["meta"]["prompt"] == "support#1"
    # The placeholder already there is kept and not given to the new address.
    assert row["messages"][1]["content"] == "Mail <EMAIL_1> or <EMAIL_2>"


def test_a_streamed_answer_is_read_from_the_logged_summary(engine: Engine) -> None:
    summary = json.dumps({"choices": [{"index": 0, "content": "streamed text", "finish_reason": "stop"}]})
    seed(engine, record(1, chat("stream please", stream=True), summary, stream=True))
    [row] = export_from_logs(engine).rows
    assert row["expected"] == "streamed text"


def test_rows_without_usable_bodies_are_skipped_with_a_reason(engine: Engine) -> None:
    seed(
        engine,
        record(1, chat("ok"), answer("fine")),
        record(2, chat("cut"), '{"choices": [{"message": {"content": "tru', body_truncated=True),
        record(3, None, None),  # bodies off
        record(4, chat("tool"), answer(None, tool_calls=[{"id": "t", "type": "function"}])),
        record(5, chat("other endpoint"), answer("x"), endpoint="completions"),
    )
    result = export_from_logs(engine)
    assert [r["meta"]["request_id"] for r in result.rows] == ["req-0001"]
    assert result.selected == 4  # the completions request is not selected at all
    assert result.skipped == {SKIP_TRUNCATED: 1, SKIP_NO_BODY: 1, SKIP_NO_ANSWER: 1}


def test_only_successful_requests_by_default(engine: Engine) -> None:
    seed(
        engine,
        record(1, chat("good"), answer("fine")),
        record(2, chat("upstream down"), None, status=502, error_type="upstream_error"),
        record(3, chat("broke mid-stream"), answer("par"), error_type="stream_error"),
    )
    assert [r["meta"]["request_id"] for r in export_from_logs(engine).rows] == ["req-0001"]
    failed = export_from_logs(engine, status="error")
    assert (failed.selected, failed.written, failed.skipped) == (2, 1, {SKIP_NO_BODY: 1})
    assert export_from_logs(engine, status=None).selected == 3
    assert export_from_logs(engine, status=502).selected == 1
    assert export_from_logs(engine, status="502").selected == 1


# --- filters ---------------------------------------------------------------------------------


@pytest.fixture
def mixed_log(engine: Engine) -> Engine:
    seed(
        engine,
        record(1, chat("a"), answer("1"), route="gpt-test", prompt_name="support", prompt_version=1),
        record(2, chat("b"), answer("2"), route="gpt-test", prompt_name="support", prompt_version=2),
        record(3, chat("c"), answer("3"), route="claude", prompt_name="triage", prompt_version=1),
        record(4, chat("d"), answer("4"), route="claude"),
    )
    return engine


def ids(result: ExportResult) -> list[str]:
    return [row["meta"]["request_id"] for row in result.rows]


def test_filters_by_route_prompt_version_and_time(mixed_log: Engine) -> None:
    assert ids(export_from_logs(mixed_log, route="claude")) == ["req-0003", "req-0004"]
    assert ids(export_from_logs(mixed_log, prompt="support")) == ["req-0001", "req-0002"]
    assert ids(export_from_logs(mixed_log, prompt="support#2")) == ["req-0002"]
    assert ids(export_from_logs(mixed_log, route="claude", prompt="triage")) == ["req-0003"]
    window = export_from_logs(mixed_log, since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=4))
    assert ids(window) == ["req-0002", "req-0003"]  # since inclusive, until exclusive
    # A naive time is UTC.
    naive = export_from_logs(mixed_log, since=(T0 + timedelta(seconds=4)).replace(tzinfo=None))
    assert ids(naive) == ["req-0004"]


def test_no_match_is_an_error_that_names_the_filters(mixed_log: Engine) -> None:
    with pytest.raises(InvalidRequest, match=r"no logged requests match .*route 'nope'"):
        export_from_logs(mixed_log, route="nope")
    with pytest.raises(InvalidRequest, match="prompt 'triage#2'"):
        export_from_logs(mixed_log, prompt="triage#2")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": "support@production"}, "records prompt versions, not labels"),
        ({"prompt": "support#x"}, "'#' takes a version number"),
        ({"prompt": "Bad Name!"}, "Invalid prompt reference"),
        ({"since": T0 + timedelta(days=1), "until": T0}, "must be before until"),
        ({"sample": 0}, "sample must be at least 1"),
        ({"status": "fine"}, "status must be an HTTP status code"),
        ({"feedback": "great"}, "feedback must be one of any, positive, negative, corrected"),
    ],
)
def test_bad_filters_are_refused(mixed_log: Engine, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        export_from_logs(mixed_log, **kwargs)


def test_the_feedback_filter_keeps_requests_by_their_feedback(engine: Engine) -> None:
    seed(engine, *(record(n, chat(f"question {n}?"), answer(f"answer {n}")) for n in range(1, 6)))
    given = [
        ("req-0001", 1.0, None),  # thumbs up
        ("req-0002", 0.0, None),  # thumbs down
        ("req-0003", 0.25, "the right answer"),  # rated 2 of 5, and corrected
        ("req-0004", None, None),  # a comment only
    ]
    with engine.begin() as connection:
        for i, (request_id, value, correction) in enumerate(given):
            connection.execute(
                insert(feedback_table).values(
                    id=f"fb{i}",
                    scope="key:k",
                    request_id=request_id,
                    created_at=T0,
                    source="api",
                    score_value=value,
                    correction=correction,
                    body_hash="h",
                )
            )
    chosen = {
        kind: sorted(by_request(export_from_logs(engine, feedback=kind)))
        for kind in ("any", "positive", "negative", "corrected")
    }
    assert chosen == {
        "any": ["req-0001", "req-0002", "req-0003", "req-0004"],
        "positive": ["req-0001"],
        "negative": ["req-0002", "req-0003"],
        "corrected": ["req-0003"],
    }
    with pytest.raises(InvalidRequest, match="feedback 'positive'"):
        export_from_logs(engine, feedback="positive", route="other")


# --- de-duplication and sampling -------------------------------------------------------------


def test_duplicates_by_case_and_whitespace_keep_the_first(engine: Engine) -> None:
    seed(
        engine,
        record(1, chat("How do  budgets work?"), answer("first")),
        record(2, chat("how do budgets\nwork?"), answer("second")),
        record(3, chat("HOW DO BUDGETS WORK?"), answer("third")),
        record(4, chat("How do caches work?"), answer("other")),
    )
    result = export_from_logs(engine)
    assert [r["expected"] for r in result.rows] == ["first", "other"]
    assert (result.selected, result.written, result.duplicates) == (4, 2, 2)
    # The same input under another prompt is another case; under another version, the same.
    seed(
        engine,
        record(5, chat("how do budgets work?"), answer("p1"), prompt_name="p", prompt_version=1),
        record(6, chat("how do budgets work?"), answer("p2"), prompt_name="p", prompt_version=2),
    )
    again = export_from_logs(engine)
    assert [r["expected"] for r in again.rows] == ["first", "other", "p1"]
    assert again.duplicates == 3


def test_ids_are_stable_and_unique(engine: Engine) -> None:
    seed(engine, *(record(i, chat(f"question {i}"), answer(f"a{i}")) for i in range(10)))
    first = [r["id"] for r in export_from_logs(engine).rows]
    assert first == [r["id"] for r in export_from_logs(engine).rows]
    assert len(set(first)) == 10


def test_sampling_is_reproducible_and_stable_as_the_log_grows(engine: Engine) -> None:
    seed(engine, *(record(i, chat(f"question {i}"), answer(f"a{i}")) for i in range(40)))
    one = export_from_logs(engine, sample=8, seed=1)
    assert one.written == 8 and one.sampled_out == 32
    assert one.rows == export_from_logs(engine, sample=8, seed=1).rows
    assert ids(one) == sorted(ids(one))  # oldest first
    other = export_from_logs(engine, sample=8, seed=2)
    assert set(ids(one)) != set(ids(other))
    # Rows logged later displace only sampled rows they outrank.
    seed(engine, *(record(i, chat(f"question {i}"), answer(f"a{i}")) for i in range(40, 50)))
    grown = export_from_logs(engine, sample=8, seed=1)
    kept = set(ids(one)) & set(ids(grown))
    added = set(ids(grown)) - set(ids(one))
    assert all(int(r[4:]) >= 40 for r in added)
    assert len(kept) + len(added) == 8
    # A sample larger than the log is the whole log.
    assert export_from_logs(engine, sample=500).written == 50


def test_sampling_counts_duplicates_before_choosing(engine: Engine) -> None:
    seed(engine, *(record(i, chat(f"q{i % 5}"), answer("a")) for i in range(20)))
    result = export_from_logs(engine, sample=3, seed=7)
    assert (result.selected, result.duplicates, result.sampled_out, result.written) == (20, 15, 2, 3)


# --- redaction -------------------------------------------------------------------------------

SECRET = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"


def test_personal_data_and_secrets_are_redacted_everywhere_in_a_row(engine: Engine) -> None:
    question = f"I am at jane.doe@example.com or (415) 555-0132, my key is {SECRET}"
    prompt_body = json.dumps(
        {"model": "gpt-test", "prompt": {"name": "support", "variables": {"email": "bob@corp.example"}}}
    )
    seed(
        engine,
        record(1, chat(question), answer("I will write to jane.doe@example.com today.")),
        record(2, prompt_body, answer("Hello bob@corp.example"), prompt_name="support", prompt_version=1),
        record(3, chat("nothing personal here"), answer("good")),
    )
    result = export_from_logs(engine, status=None)
    rows = by_request(result)
    text = rows["req-0001"]["messages"][0]["content"]
    assert text == "I am at <EMAIL_1> or <PHONE_1>, my key is <API_KEY_1>"
    assert rows["req-0001"]["expected"] == "I will write to <EMAIL_1> today."
    assert rows["req-0002"]["vars"] == {"email": "<EMAIL_1>"}
    assert rows["req-0002"]["expected"] == "Hello <EMAIL_1>"
    assert rows["req-0003"]["messages"][0]["content"] == "nothing personal here"
    assert result.redacted == 2
    dumped = json.dumps(result.rows)
    for value in ("jane.doe", "555-0132", SECRET, "bob@corp"):
        assert value not in dumped

    raw = export_from_logs(engine, status=None, redact=False)
    assert by_request(raw)["req-0001"]["messages"][0]["content"] == question
    assert raw.redacted == 0
    # The id is taken after redaction: it does not depend on (or give away) the values.
    assert by_request(raw)["req-0001"]["id"] != rows["req-0001"]["id"]


def test_inputs_that_differ_only_in_redacted_values_are_one_case(engine: Engine) -> None:
    seed(
        engine,
        record(1, chat("reset the password for ann@example.com"), answer("done")),
        record(2, chat("reset the password for bob@example.com"), answer("done too")),
    )
    result = export_from_logs(engine)
    assert [r["expected"] for r in result.rows] == ["done"]
    assert result.duplicates == 1
    assert export_from_logs(engine, redact=False).written == 2


# --- writing ---------------------------------------------------------------------------------


def test_write_dataset_writes_jsonl_the_loader_reads(engine: Engine, tmp_path: Path) -> None:
    seed(
        engine,
        record(1, chat("Grüße, wie geht's?"), answer("Gut.")),
        record(2, json.dumps({"prompt": {"name": "p", "variables": {"x": 1}}}), answer("one")),
    )
    result = export_from_logs(engine)
    path = tmp_path / "sets" / "golden.jsonl"
    assert write_dataset(result.rows, path) == 2
    lines = path.read_text(encoding="utf-8").splitlines()
    assert "Grüße" in lines[0]  # written as UTF-8, not escaped
    parsed = [json.loads(line) for line in lines]
    assert parsed == list(result.rows)
    for row in parsed:
        assert set(row) <= ROW_KEYS and {"id", "vars", "expected", "tags", "meta"} <= set(row)
        assert isinstance(row["vars"], dict) and isinstance(row["tags"], list)
    assert parsed[1]["vars"] == {"x": 1}
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_failing_write_leaves_no_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    bad = [{"id": "a", "vars": {}, "expected": "x"}, {"id": "b", "vars": {"v": object()}}]
    with pytest.raises(TypeError):
        write_dataset(bad, path)
    assert list(tmp_path.iterdir()) == []
    path.write_text("old\n")
    with pytest.raises(ValueError, match="JSON compliant"):
        write_dataset([{"id": "c", "expected": float("nan")}], path)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["golden.jsonl"]


# --- what the gateway really logs --------------------------------------------------------------


def test_a_prompt_request_through_the_gateway_exports_its_variables(
    gateway_factory: GatewayFactory,  # noqa: F811 (fixture)
    upstream: FakeDeployment,
) -> None:
    gw = gateway_factory({"gpt-test": [upstream]})
    admin = gw.admin()
    template = [
        {"role": "system", "content": "You answer questions about Keel."},
        {"role": "user", "content": "{{ question }}"},
    ]
    variables = [{"name": "question", "type": "string"}]
    admin.post("/prompts", {"name": "support", "template": template, "variables": variables})
    client = gw.client()
    client.chat.completions.create(
        model="gpt-test",
        messages=[],
        extra_body={"prompt": {"name": "support", "version": 1, "variables": {"question": "why?"}}},
    )
    client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "plain"}])
    gw.flush_log()
    rows = export_from_logs(gw.app.engine).rows
    assert [(r["vars"], r.get("messages"), r["meta"]["prompt"]) for r in rows] == [
        ({"question": "why?"}, None, "support#1"),
        ({}, [{"role": "user", "content": "plain"}], None),
    ]
    assert [r["expected"] for r in rows] == ["echo: why?", "echo: plain"]
