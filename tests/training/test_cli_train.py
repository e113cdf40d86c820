"""``keel train``: a short DPO run from the command line (progress bar, summary,
registration), and ``--write-config`` for ``accelerate launch``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from keel.training import TrainConfig
from tests.training.data import preference_dataset

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.mark.slow
@pytest.mark.usefixtures("cli_env")
def test_train_dpo_command(
    tmp_path: Path, train_home: Path, cli_app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_HOME", str(train_home))
    dataset = preference_dataset(tmp_path / "prefs", eval_rows=4)
    out = tmp_path / "run"
    args = ["train", "dpo", str(dataset), "--max-steps", "3", "--batch-size", "4", "--max-length", "96"]
    args += ["--lr", "1e-4", "--threads", "2", "--output-dir", str(out), "--alias", "candidate"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"DPO run {out.name}: {out}" in lines
    assert any("DPO training" in line and "3/3" in line for line in lines)  # the progress bar
    assert any(line.startswith("DPO finished: 3 steps on cpu (fp32)") for line in lines)
    assert any(line.startswith("  eval reward accuracy: ") for line in lines)
    assert f"model: {out / 'model'}" in lines
    assert "registered: keel-demo version 1 [candidate]" in lines

    # Again into the same directory: refused, it would train over the checkpoints.
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 1
    assert "already holds checkpoints (checkpoint-3): pass --resume" in result.output


@pytest.mark.usefixtures("cli_env")
def test_write_config_for_accelerate(
    tmp_path: Path, bare_home: Path, cli_app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_HOME", str(bare_home))
    dataset = preference_dataset(tmp_path / "prefs")
    target = tmp_path / "run.json"
    result = CliRunner().invoke(
        cli_app,
        ["train", "dpo", str(dataset), "--lora", "r=16,alpha=32", "--bf16", "--write-config", str(target)],
    )
    assert result.exit_code == 0, result.output
    assert f"accelerate launch -m keel.training.launch --config {target}" in result.output
    config = TrainConfig.from_json(target.read_text())
    assert config.kind == "dpo" and config.bf16 is True
    assert config.lora is not None and (config.lora.r, config.lora.alpha) == (16, 32)
    assert config.output_dir is not None and config.output_dir.parent == bare_home.resolve() / "training"
    assert config.dataset == dataset.resolve()
    assert json.loads(target.read_text())["home"] == str(bare_home.resolve())
    assert not (bare_home / "training").exists()  # nothing trained
