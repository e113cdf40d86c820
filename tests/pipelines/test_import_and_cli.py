"""`import_hh` and the `keel data export|import` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from keel.cli import _data
from keel.core import InvalidRequest
from keel.feedback import FeedbackInput, FeedbackStore, Giver
from keel.pipelines import (
    hh_to_preference,
    import_hh,
    load_preference_dataset,
    preference_to_hh,
    read_manifest,
)
from tests.feedback.logs import log_chat

GOOD = [
    {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?",
        "rejected": "\n\nHuman: Hi\n\nAssistant: What.",
    },
    {
        "chosen": "\n\nHuman: 2+2?\n\nAssistant: 4\n\nHuman: and 3+3?\n\nAssistant: 6",
        "rejected": "\n\nHuman: 2+2?\n\nAssistant: 4\n\nHuman: and 3+3?\n\nAssistant: 7",
    },
    {
        "chosen": "Human: Email me at bob@example.org\n\nAssistant: Sure.",
        "rejected": "Human: Email me at bob@example.org\n\nAssistant: No.",
    },
]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_hh_import_builds_a_preference_dataset(tmp_path: Path) -> None:
    source = _write(tmp_path / "hh.jsonl", [json.dumps(row) for row in GOOD] + ["", json.dumps(GOOD[0])])
    result = import_hh(source, tmp_path / "out", eval_fraction=0.34)
    train, evaluation = load_preference_dataset(tmp_path / "out")
    rows = train + evaluation
    assert len(rows) == 3 and result.manifest["duplicates"] == 1
    assert result.manifest["sources"] == {"hh_import": 3}
    multi = next(r for r in rows if r["chosen"][0]["content"] == "6")
    assert multi["prompt"] == [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "and 3+3?"},
    ]
    assert multi["rejected"] == [{"role": "assistant", "content": "7"}]
    text = (tmp_path / "out" / "train.jsonl").read_text() + (tmp_path / "out" / "eval.jsonl").read_text()
    assert "bob@example.org" not in text and "<EMAIL_1>" in text
    assert read_manifest(tmp_path / "out")["redacted_rows"] == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "line 3: not valid JSON"),
        (
            json.dumps({"chosen": "\n\nHuman: a\n\nAssistant: b"}),
            "line 3: 'rejected' must be a non-empty string",
        ),
        (json.dumps(["x"]), "line 3: not a JSON object"),
        (
            json.dumps(
                {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: OTHER\n\nAssistant: c"}
            ),
            "line 3: 'chosen' and 'rejected' do not share the conversation",
        ),
        (
            json.dumps(
                {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: b"}
            ),
            "line 3: 'chosen' and 'rejected' give the same answer",
        ),
        (
            json.dumps({"chosen": "just text", "rejected": "other text"}),
            "line 3: text before the first 'Human:'",
        ),
        (
            json.dumps({"chosen": "\n\nHuman: a", "rejected": "\n\nHuman: b"}),
            r"line 3: .* must each end with",
        ),
    ],
)
def test_malformed_hh_lines_are_named_and_nothing_is_written(tmp_path: Path, bad: str, message: str) -> None:
    source = _write(tmp_path / "hh.jsonl", [json.dumps(GOOD[0]), json.dumps(GOOD[1]), bad])
    with pytest.raises(InvalidRequest, match=message):
        import_hh(source, tmp_path / "sets" / "out")
    assert not (tmp_path / "sets").exists()


def test_an_empty_hh_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="holds no rows"):
        import_hh(_write(tmp_path / "hh.jsonl", [""]), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_hh_round_trip() -> None:
    for row in GOOD[:2]:
        assert preference_to_hh(hh_to_preference(row)) == row


def _cli(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    _data.register(app)
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'home' / 'keel.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEEL_CONFIG", raising=False)
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KEEL_DATABASE_URL", url)
    return url


def test_export_and_import_commands(database: str, tmp_path: Path) -> None:
    from keel.store import create_store_engine, upgrade

    code, out = _cli("data", "export", "--kind", "preference", "--out", str(tmp_path / "none"))
    assert code == 1 and "no feedback matches" in out and not (tmp_path / "none").exists()

    engine = create_store_engine(database)
    upgrade(engine)
    for i in range(4):
        request_id = log_chat(engine, f"q{i}", f"wrong {i}")
        FeedbackStore(engine).submit(
            Giver(), FeedbackInput.from_json({"request_id": request_id, "correction": f"right {i}"})
        )
    engine.dispose()

    code, out = _cli(
        "data", "export", "--kind", "preference", "--format", "hh", "--out", str(tmp_path / "hh"), "--json"
    )
    assert code == 0, out
    shown = json.loads(out)
    assert shown["id"] == read_manifest(tmp_path / "hh")["id"] and shown["format"] == "hh"
    code, out = _cli("data", "export", "--kind", "sft", "--out", str(tmp_path / "sft"))
    assert code == 0 and "wrote sft dataset sha256:" in out
    code, out = _cli("data", "export", "--kind", "banana", "--out", str(tmp_path / "x"))
    assert code == 1 and "kind must be one of" in out

    source = _write(tmp_path / "hh.jsonl", [json.dumps(GOOD[0]), "{oops"])
    code, out = _cli("data", "import", "--hh", str(source), "--out", str(tmp_path / "imported"))
    assert code == 1 and "line 2" in out
    source = _write(tmp_path / "hh.jsonl", [json.dumps(row) for row in GOOD])
    code, out = _cli("data", "import", "--hh", str(source), "--out", str(tmp_path / "imported"))
    assert code == 0, out
    assert read_manifest(tmp_path / "imported")["counts"]["total"] == 3
