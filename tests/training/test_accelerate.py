"""Large runs go to ``accelerate launch``: the same run, started by accelerate's launcher
(here one CPU process), trains, logs and registers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from keel.training import TrainConfig, default_tracking_uri, resolve_model, resolve_paths
from tests.training.data import sft_dataset

pytestmark = pytest.mark.slow


def test_accelerate_launch_runs_a_training_run(tmp_path: Path, train_home: Path) -> None:
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("the accelerate launcher is not installed")
    config = resolve_paths(
        TrainConfig(
            kind="sft",
            base_model="demo",
            dataset=sft_dataset(tmp_path / "sft"),
            home=train_home,
            max_steps=3,
            batch_size=4,
            max_length=96,
            learning_rate=1e-3,
            model_name="demo-accelerate",
            aliases=("candidate",),
            progress=False,
        )
    )
    config_file = tmp_path / "run.json"
    config_file.write_text(config.to_json())
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "RANK", "WORLD_SIZE"))}
    env["HF_HOME"] = str(tmp_path / "hf")  # no accelerate default_config.yaml from the machine
    done = subprocess.run(
        [
            accelerate,
            "launch",
            "--num_processes",
            "1",
            "--num_machines",
            "1",
            "--cpu",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "keel.training.launch",
            "--config",
            str(config_file),
            "--json",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SFT finished: 3 steps on cpu" in done.stdout
    result = json.loads(out.read_text())
    assert result["global_step"] == 3
    assert result["model"]["name"] == "demo-accelerate"
    ref = resolve_model("demo-accelerate", "candidate", tracking_uri=default_tracking_uri(train_home))
    assert ref.tags["keel.kind"] == "sft"
    assert ref.path == config.output_dir / "model"
