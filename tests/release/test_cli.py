"""``keel models promote|rollout|rollback|deployments|gates`` and ``keel models canary
status`` on a config file, with MLflow's registry in the data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from keel.release import record_gate
from keel.store import create_store_engine, read_audit, upgrade
from keel.training import default_tracking_uri, register_model, resolve_model
from tests.training.conftest import fake_model_dir

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    from keel.cli import _models, _models_release

    app = typer.Typer(no_args_is_help=True)
    _models.register(app)
    _models_release.register(app)
    return app


def test_promote_rollout_rollback_from_the_command_line(tmp_path: Path, cli: typer.Typer) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "keel.yaml"
    config.write_text(
        f"home: {home}\n"
        "providers: {up: {type: openai, base_url: 'http://127.0.0.1:9/v1'}}\n"
        "models: {chat: {deployments: [{provider: up, model: x}]}}\n"
    )
    uri = default_tracking_uri(home)
    register_model(fake_model_dir(tmp_path / "v1"), "m", tracking_uri=uri, aliases=["production"])
    register_model(fake_model_dir(tmp_path / "v2"), "m", tracking_uri=uri)
    runner = CliRunner()

    def keel(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, [*args, "--config", str(config)])
        return result.exit_code, result.output

    code, out = keel("models", "promote", "m", "2", "--route", "nope")
    assert code == 1 and "no route 'nope'" in out
    code, out = keel("models", "promote", "m", "2", "--route", "chat")
    assert code == 1 and "Promotion refused" in out and "no gate verdict" in out

    engine = create_store_engine(f"sqlite:///{home / 'keel.db'}")
    upgrade(engine)
    record_gate(
        engine, model="m", version=2, baseline_version=1, suite="faq", eval_run_id="r1", passed=False,
        checks=[{"rule": "rouge must not drop", "passed": False, "detail": "1 → 0.5"}], actor="test",
    )  # fmt: skip
    code, out = keel("models", "promote", "m", "2", "--route", "chat", "--share", "0.25")
    assert code == 1 and "rouge must not drop: 1 → 0.5" in out
    code, out = keel("models", "gates", "m", "--json")
    assert code == 0 and [g["passed"] for g in json.loads(out)] == [False]

    code, out = keel("models", "promote", "m", "v2", "--route", "chat", "--share", "0.25", "--force")
    assert code == 0 and "canary m@v2 on chat: 25%" in out and "audited" in out
    [entry] = read_audit(engine, target_type="model_release")
    assert entry.action == "model.promote.forced" and entry.actor.startswith("cli:")

    code, out = keel("models", "deployments", "--json")
    [deployment] = json.loads(out)
    assert deployment["state"] == "canary" and deployment["path"] == str(tmp_path / "v2")
    code, out = keel("models", "canary", "status", "chat", "--json")
    assert code == 0 and json.loads(out)["verdict"] == "collecting"

    code, out = keel("models", "rollout", "chat")
    assert code == 0 and "m@v2 is live on chat; m@production → v2" in out
    assert resolve_model("m", "production", tracking_uri=uri).version == 2
    code, out = keel("models", "canary", "status", "chat")
    assert code == 1 and "no canary" in out

    code, out = keel("models", "rollback", "chat", "--reason", "regressed")
    assert code == 0 and "retired m@v2 (live)" in out and "configured deployments" in out
    assert resolve_model("m", "production", tracking_uri=uri).version == 1
    code, out = keel("models", "deployments", "chat", "--all", "--json")
    assert [d["state"] for d in json.loads(out)] == ["retired"]
    actions = [e.action for e in read_audit(engine, target_type="model_release")]
    assert actions == ["model.rollback", "model.rollout", "model.promote.forced"]
    engine.dispose()


def test_gate_then_promote_from_the_command_line(tmp_path: Path, cli: typer.Typer, upstream: object) -> None:
    from tests.release.test_gate import _suite

    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "keel.yaml"
    config.write_text(
        f"home: {home}\n"
        f"providers: {{up: {{type: openai, base_url: '{upstream.base_url}', api_key: sk-x}}}}\n"  # type: ignore[attr-defined]
        "models: {chat: {deployments: [{provider: up, model: fake-chat}]}}\n"
    )
    uri = default_tracking_uri(home)
    register_model(fake_model_dir(tmp_path / "v1"), "m", tracking_uri=uri, aliases=["production"])
    register_model(fake_model_dir(tmp_path / "v2"), "m", tracking_uri=uri)
    suite = _suite(tmp_path / "suite")
    runner = CliRunner()

    def keel(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, [*args, "--config", str(config)])
        return result.exit_code, result.output

    # Both versions served by the configured provider (the fake echoes, so they tie).
    code, out = keel(
        "models", "gate", "m", "--candidate", "2", "--suite", str(suite), "--provider", "up", "-q"
    )
    assert code == 0, out
    assert "gate passed: m v2 against v1 on unit-release" in out
    sent = {r.json["model"] for r in upstream.requests()}  # type: ignore[attr-defined]
    assert sent == {str(tmp_path / "v1"), str(tmp_path / "v2")}
    code, out = keel("models", "promote", "m", "2", "--route", "chat", "--provider", "up")
    assert code == 0 and "canary m@v2 on chat: 10%" in out and "forced" not in out
    code, out = keel("models", "gate", "m", "--candidate", "2", "--baseline", "2", "--suite", str(suite))
    assert code == 1 and "the candidate is the baseline" in out


def test_demo_loop_refuses_a_used_directory(tmp_path: Path) -> None:
    from keel.cli import _demo

    app = typer.Typer(no_args_is_help=True)
    _demo.register(app)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keel.db").write_text("")
    (tmp_path / "keel.yaml").write_text(f"home: {tmp_path / 'home'}\n")
    result = CliRunner().invoke(
        app, ["demo", "loop", "--home", str(tmp_path / "used"), "--config", str(tmp_path / "keel.yaml")]
    )
    assert result.exit_code == 1 and "is not empty" in result.output
