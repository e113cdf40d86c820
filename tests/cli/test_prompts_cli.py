"""``keel prompts`` against a SQLite file chosen by KEEL_DATABASE_URL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.cli.helpers import keel, sqlite_engine

from keel.store import AuditEntry, RequestRecord, insert_records, read_audit

SUPPORT = """\
messages:
  - {role: system, content: "You help with {{ product }}."}
  - {role: placeholder, content: "{{ history }}"}
  - {role: user, content: "{{ question }}"}
variables:
  product: {type: string, default: Keel}
  question: string
  count: {type: integer, default: 1}
model_config: {model: gpt-4o-mini, temperature: 0.2}
commit_message: first
"""


@pytest.fixture
def migrated(database: Path) -> Path:
    assert keel("db", "upgrade")[0] == 0
    return database


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_push_label_change_diff_rollback_render_pull(migrated: Path, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    write(folder, "support.yaml", SUPPORT)
    write(
        folder,
        "summary.json",
        json.dumps({"template": "Summarise: {{ text }}", "variables": {"text": "string"}}),
    )
    code, out, err = keel("prompts", "push", str(folder))
    assert code == 0, err
    assert out.splitlines() == ["created: summary#1", "created: support#1"]
    assert keel("prompts", "push", str(folder))[1].splitlines() == [
        "unchanged: summary#1",
        "unchanged: support#1",
    ]

    code, out, _ = keel("prompts", "label", "support", "1", "production")
    assert code == 0 and out.strip() == "support@production -> #1 (protected)"
    write(folder, "support.yaml", SUPPORT.replace("You help", "You gladly help").replace("first", "warmer"))
    code, out, _ = keel("prompts", "push", str(folder), "--label", "staging")
    assert out.splitlines() == ["unchanged: summary#1 (@staging)", "new version: support#2 (@staging)"]
    keel("prompts", "label", "support", "2", "production")

    code, out, _ = keel("prompts", "diff", "support", "1", "2")
    assert (
        code == 0 and "-You help with {{ product }}." in out and "+You gladly help with {{ product }}." in out
    )

    code, out, _ = keel("prompts", "list")
    assert code == 0 and "support" in out and "production=#2" in out and "staging=#2" in out
    listed = json.loads(keel("prompts", "list", "--json")[1])
    assert {p["name"]: p["latest_version"] for p in listed} == {"summary": 1, "support": 2}

    code, out, _ = keel("prompts", "show", "support@production")
    assert code == 0 and out.startswith("support#2  (chat)") and "warmer" in out
    shown = json.loads(keel("prompts", "show", "support#1", "--json")[1])
    assert shown["version"] == 1 and shown["labels"]["production"]["version"] == 2

    code, out, _ = keel("prompts", "render", "support", "--var", "question=Why?", "--var", "count=3")
    assert code == 0 and out.startswith("[system]\nYou gladly help with Keel.\n")
    code, out, _ = keel("prompts", "rollback", "support", "production")
    assert code == 0 and out.strip() == "support@production -> #1"
    rendered = json.loads(keel("prompts", "render", "support", "--var", "question=q", "--json")[1])
    assert rendered["version"] == 1 and rendered["messages"][0]["content"] == "You help with Keel."
    assert keel("prompts", "render", "summary#1", "--var", "text=abc")[1] == "Summarise: abc\n"
    code, out, _ = keel("prompts", "history", "support", "production")
    assert [line.split()[2:6] for line in out.splitlines()] == [
        ["production:", "-", "->", "#1"],
        ["production:", "#1", "->", "#2"],
        ["production:", "#2", "->", "#1"],
    ]

    code, out, _ = keel("prompts", "pull", str(tmp_path / "pulled"))
    assert code == 0 and out.strip().startswith("wrote 2 prompt file(s)")
    # Pulled files push back as no change: the round trip is exact.
    assert keel("prompts", "push", str(tmp_path / "pulled"))[1].splitlines() == [
        "unchanged: summary#1",
        "unchanged: support#2",
    ]
    code, out, _ = keel("prompts", "pull", str(tmp_path / "production"), "--label", "production")
    assert out.strip().startswith("wrote 1 prompt file(s)")
    assert "You help with" in (tmp_path / "production" / "support.yaml").read_text()
    actors = {entry.actor for entry in read_audit_from(migrated)}
    assert len(actors) == 1 and actors.pop().startswith("cli:")


def read_audit_from(database: Path) -> list[AuditEntry]:
    with sqlite_engine(database) as engine:
        return read_audit(engine)


def test_a_folder_with_one_bad_file_writes_nothing(migrated: Path, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    write(folder, "a.yaml", SUPPORT)
    write(folder, "b.yaml", "template: [unclosed\n")
    code, out, err = keel("prompts", "push", str(folder))
    assert code == 1 and out == ""
    assert err.startswith(f"error: {folder / 'b.yaml'}: invalid YAML")
    assert keel("prompts", "list")[2].strip() == "no prompts"


def test_template_errors_name_the_file(migrated: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "template: 'Hi {{ name }}'\n")
    code, _, err = keel("prompts", "push", str(path))
    assert code == 1 and err.strip() == (
        f"error: {path}: Template of prompt 'p' uses undeclared variable 'name' (template); "
        "declare it in 'variables'."
    )


def test_create_refuses_an_existing_prompt(migrated: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "support.yaml", SUPPORT)
    assert keel("prompts", "create", str(path))[1].strip() == "created support#1"
    code, _, err = keel("prompts", "create", str(path))
    assert code == 1 and err.strip() == "error: Prompt 'support' already exists."


def test_errors_are_one_line(migrated: Path, tmp_path: Path) -> None:
    write(tmp_path, "support.yaml", SUPPORT)
    keel("prompts", "create", str(tmp_path / "support.yaml"))
    for args, message in [
        (("show", "nope"), "error: Unknown prompt 'nope'."),
        (("show", "support@canary"), "error: Prompt 'support' has no label 'canary'."),
        (("rollback", "support", "production"), "error: Prompt 'support' has no label 'production'."),
        (("render", "support#1"), "error: Missing variable 'question' for prompt 'support#1'."),
        (
            ("render", "support#1", "--var", "question=q", "--var", "count=x"),
            "error: --var count: a integer is given as JSON, got 'x'",
        ),
        (
            ("render", "support#1", "--var", "question=q", "--var", "count=1.5"),
            "error: Variable 'count' of prompt 'support#1' must be integer, not number.",
        ),
        (("label", "support", "4", "staging"), "error: Prompt 'support' has no version 4."),
    ]:
        code, _, err = keel("prompts", *args)
        assert (code, err.strip()) == (1, message)


def test_commands_need_an_upgraded_database(database: Path, tmp_path: Path) -> None:
    code, _, err = keel("prompts", "list")
    assert code == 1 and "run `keel db upgrade` first" in err
    assert not database.exists()


def test_stats_per_version(migrated: Path, tmp_path: Path) -> None:
    write(tmp_path, "support.yaml", SUPPORT)
    keel("prompts", "create", str(tmp_path / "support.yaml"))
    write(tmp_path, "support.yaml", SUPPORT.replace("You help", "You gladly help"))
    keel("prompts", "push", str(tmp_path / "support.yaml"), "--label", "production")
    now = datetime.now(UTC)

    def logged(i: int, version: int, status: int, ago: timedelta) -> RequestRecord:
        return RequestRecord(
            id=f"r{i}",
            created_at=now - ago,
            endpoint="chat.completions",
            requested_model="prompt:support",
            status=status,
            latency_ms=100.0 + i,
            input_tokens=20,
            output_tokens=7,
            cost_nanos=1_000_000,
            prompt_name="support",
            prompt_version=version,
        )

    with sqlite_engine(migrated) as engine:
        insert_records(
            engine,
            [
                logged(1, 1, 200, timedelta(days=9)),
                logged(2, 2, 200, timedelta(hours=1)),
                logged(3, 2, 500, timedelta(hours=2)),
                logged(4, 2, 200, timedelta(hours=3)),
            ],
        )

    code, out, err = keel("prompts", "stats", "support")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "version", "labels", "requests", "errors", "p50", "ms", "p95", "ms", "input", "output", "cost", "$",
        "last", "request", "(UTC)",
    ]  # fmt: skip
    assert lines[1].split()[:10] == ["#1", "-", "1", "0", "(0.0%)", "101.0", "101.0", "20", "7", "0.001"]
    assert lines[2].split()[:10] == [
        "#2", "production", "3", "1", "(33.3%)", "103.0", "103.9", "60", "21", "0.003",
    ]  # fmt: skip

    code, out, _ = keel("prompts", "stats", "support", "--since", "7d", "--json")
    data = json.loads(out)
    assert [(v["version"], v["requests"]) for v in data] == [(1, 0), (2, 3)]
    assert data[1]["cost_usd"] == "0.003" and data[1]["error_rate"] == pytest.approx(1 / 3)

    code, _, err = keel("prompts", "stats", "nope")
    assert (code, err.strip()) == (1, "error: Unknown prompt 'nope'.")
    code, _, err = keel("prompts", "stats", "support", "--since", "soon")
    assert code == 1 and err.startswith("error: --since takes a duration")
    code, _, err = keel("prompts", "stats", "support", "--team", "nope")
    assert (code, err.strip()) == (1, "error: No team named or with id 'nope'.")
