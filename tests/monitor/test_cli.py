"""``keel monitor drift/latest/signals/simulate`` on a SQLite store. The lead registers
the command group in keel.cli; here it is mounted on an app of its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from keel.cli import _monitor
from keel.store import create_store_engine, upgrade
from tests.fakes import FakeDeployment
from tests.gateway.conftest import GatewayFactory
from tests.monitor._traffic import make_records, seed_log

app = typer.Typer()
_monitor.register(app)
T0 = datetime(2026, 3, 2, tzinfo=UTC)
UNTIL = (T0 + timedelta(hours=7)).isoformat()


def _keel(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEEL_CONFIG", raising=False)
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path / 'home' / 'keel.db'}"
    monkeypatch.setenv("KEEL_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "250")
    (tmp_path / "home").mkdir()
    engine = create_store_engine(url)
    upgrade(engine)
    seed_log(
        engine,
        make_records(T0, 6 * timedelta(hours=1), 900, seed=1),
        make_records(T0 + timedelta(hours=6), timedelta(hours=1), 200, "latency", seed=2),
    )
    engine.dispose()
    return url


def test_drift_on_demand_as_a_table_and_as_json(database: str) -> None:
    args = ["monitor", "drift", "--route", "chat", "--reference", "6h", "--window", "1h", "--until", UNTIL]
    code, out, err = _keel(*args, "--embedder", "none", "--signal", "latency_ms", "--signal", "language")
    assert code == 0, err
    assert "DRIFT" in out and "drifted: latency_ms" in out
    code, out, err = _keel(*args, "--embedder", "hashing", "--json")
    assert code == 0, err
    results = {r["signal"]: r for r in json.loads(out)}
    assert results["latency_ms"]["drifted"] and results["latency_ms"]["n_current"] == 200
    assert "input_embedding" in results and not results["language"]["drifted"]
    code, out, _ = _keel("monitor", "latest", "--route", "chat", "--json")
    assert code == 0 and {r["signal"] for r in json.loads(out)} >= {"latency_ms", "input_embedding"}


def test_unknown_signal_bad_durations_and_empty_windows_fail_in_one_line(database: str) -> None:
    code, _, err = _keel("monitor", "drift", "--signal", "latency", "--until", UNTIL, "--embedder", "none")
    assert code == 1 and err.startswith("error: unknown signal 'latency' (known: ")
    code, _, err = _keel("monitor", "drift", "--window", "an hour")
    assert code == 1 and "--window: not a duration: 'an hour'" in err
    code, _, err = _keel("monitor", "drift", "--route", "chat", "--until", "2027-01-01", "--embedder", "none")
    assert code == 1 and "error: no requests for route 'chat' in the current window" in err


def test_signals_are_listed() -> None:
    code, out, _ = _keel("monitor", "signals", "--json")
    found = {s["name"]: s for s in json.loads(out)}
    assert (
        code == 0
        and found["language"]["kind"] == "categorical"
        and found["input_embedding"]["source"] == "bodies"
    )


def test_simulate_replays_through_a_gateway(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, database: str
) -> None:
    gateway = gateway_factory({"chat": [upstream]})
    code, out, err = _keel(
        "monitor", "simulate", "--url", gateway.url, "--shift", "length", "-n", "20", "--no-report"
    )
    assert code == 0, err
    assert "baseline: 20 requests (0 failed)" in out and "length: 20 requests (0 failed)" in out
    assert len(upstream.requests()) == 40
    code, _, err = _keel("monitor", "simulate", "--url", gateway.url, "--shift", "weather")
    assert code == 1 and "--shift: 'weather' is not one of" in err
