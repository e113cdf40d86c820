"""``keel alerts list/history/test/check`` on a SQLite store and a real webhook receiver.
The lead registers the command group in keel.cli; here it is mounted on an app of its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from keel.cli import _alerts
from keel.store import create_store_engine, upgrade
from tests.alerts.conftest import Receiver, seed_requests

app = typer.Typer()
_alerts.register(app)


def _keel(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEEL_CONFIG", raising=False)
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KEEL_DATABASE_URL", f"sqlite:///{tmp_path / 'home' / 'keel.db'}")
    monkeypatch.setenv("COLUMNS", "250")
    path = tmp_path / "keel.yaml"
    path.write_text(
        f"""
alerts:
  channels:
    hook: {{type: webhook, url: "{receiver.url}", retries: 0}}
    dead: {{type: webhook, url: "http://127.0.0.1:1/x", retries: 0, timeout: 2}}
  rules:
    - {{name: errors, kind: error_rate, threshold: 10, min_requests: 1, channels: [hook]}}
    - {{name: slow, kind: latency_p95, threshold: 1000, for: 5m, channels: [hook]}}
"""
    )
    return path


def test_check_list_and_history(config: Path, receiver: Receiver, tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'home' / 'keel.db'}")
    upgrade(engine)
    seed_requests(engine, datetime.now(UTC), 3, status=500)
    engine.dispose()

    code, out, err = _keel("alerts", "check", "--config", str(config))
    assert code == 0, err
    assert "errors" in out and "firing" in out and "hook:ok" in out
    assert receiver.states() == ["firing"]
    code, out, _ = _keel("alerts", "check", "--config", str(config))
    assert out.strip() == "nothing fired or resolved" and receiver.states() == ["firing"]

    code, out, _ = _keel("alerts", "list", "--config", str(config))
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "firing" in lines["errors"] and "error rate 100.0%" in lines["errors"]
    assert lines["slow"].split()[-1] == "ok" and "5m" in lines["slow"]
    listed = json.loads(_keel("alerts", "list", "--json", "--config", str(config))[1])
    assert [r["name"] for r in listed] == ["errors", "slow"]
    assert listed[0]["series"][0]["state"] == "firing"

    history = json.loads(_keel("alerts", "history", "--json", "--limit", "5", "--config", str(config))[1])
    assert [(e["rule"], e["state"]) for e in history] == [("errors", "firing")]
    assert history[0]["notifications"]["hook"]["ok"] is True


def test_test_sends_a_message_and_fails_loudly(config: Path, receiver: Receiver) -> None:
    code, out, err = _keel("alerts", "test", "hook", "--config", str(config))
    assert code == 0, err
    assert "sent a test notification to hook" in out
    assert receiver.received[0]["alert"] == "keel-test"
    code, _, err = _keel("alerts", "test", "dead", "--config", str(config))
    assert code == 1 and "error: dead:" in err and "after 1 attempts" in err
    code, _, err = _keel("alerts", "test", "nope", "--config", str(config))
    assert code == 1 and "no alert channel 'nope' (known: dead, hook)" in err


def test_a_bad_rule_is_a_located_error(config: Path) -> None:
    config.write_text("alerts:\n  rules:\n    - {name: x, kind: error_rate}\n")
    code, _, err = _keel("alerts", "list", "--config", str(config))
    assert code == 1 and "alerts.rules[0].threshold: required for kind 'error_rate'" in err
