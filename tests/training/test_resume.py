"""A training run killed midway (SIGKILL: no cleanup of any kind) resumes from its last
complete checkpoint, in the same MLflow run, and finishes."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keel.training import TrainConfig, resolve_paths, train_dpo
from tests.training.data import preference_dataset

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path, train_home: Path) -> None:
    from mlflow.tracking import MlflowClient

    dataset = preference_dataset(tmp_path / "prefs", eval_rows=8)
    config = resolve_paths(
        TrainConfig(
            kind="dpo",
            base_model="demo",
            dataset=dataset,
            home=train_home,
            output_dir=tmp_path / "run",
            max_steps=12,
            save_steps=3,
            logging_steps=1,
            learning_rate=1e-4,
            batch_size=4,
            max_length=96,
            threads=1,
            eval_at_start=False,
            progress=False,
        )
    )
    run_file = tmp_path / "run.json"
    run_file.write_text(config.to_json())
    # The killed process would train far beyond the checkpoint it is killed after.
    killed = json.loads(config.to_json()) | {"max_steps": 1000}
    killed_file = tmp_path / "killed.json"
    killed_file.write_text(json.dumps(killed))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    process = subprocess.Popen(
        [sys.executable, "-m", "keel.training.launch", "--config", str(killed_file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    marker = config.output_dir / "checkpoint-6" / "trainer_state.json"  # type: ignore[operator]
    deadline = time.monotonic() + 240
    try:
        while not marker.is_file():
            assert process.poll() is None, process.stderr.read().decode()[-3000:] if process.stderr else ""
            assert time.monotonic() < deadline, "no checkpoint-6 within 240 s"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    state = json.loads((config.output_dir / "keel-run.json").read_text())  # type: ignore[operator]
    client = MlflowClient(state["tracking_uri"])
    assert client.get_run(state["mlflow_run_id"]).info.status == "RUNNING"  # it never got to say

    result = train_dpo(dataclasses.replace(TrainConfig.from_json(run_file.read_text()), resume=True))
    assert result.resumed_from_step is not None and 6 <= result.resumed_from_step < 12
    assert result.global_step == 12
    # The trainer continued the killed run's state: its log starts before the resume point.
    trainer_state = json.loads((config.output_dir / "checkpoint-12" / "trainer_state.json").read_text())  # type: ignore[operator]
    logged_steps = [entry["step"] for entry in trainer_state["log_history"] if "loss" in entry]
    assert logged_steps[0] == 1 and logged_steps[-1] == 12
    # Same MLflow run, now finished, with losses from before and after the kill.
    assert result.mlflow_run_id == state["mlflow_run_id"]
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["keel.resumed_from_step"] == str(result.resumed_from_step)
    steps = {m.step for m in client.get_metric_history(result.mlflow_run_id, "loss")}
    assert {1, 2, 3, 4, 5, 6, 12} <= steps
    assert result.model is not None and result.model.run_id == result.mlflow_run_id
