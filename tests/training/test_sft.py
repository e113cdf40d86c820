"""SFT smoke test on the demo model (a few steps: the loss goes down), and a LoRA run
whose adapter is merged into a plain model directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel.training import LoraSpec, TrainConfig, train_dpo, train_sft
from tests.training.data import preference_dataset, sft_dataset

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


def test_sft_loss_decreases(tmp_path: Path, train_home: Path) -> None:
    from mlflow.tracking import MlflowClient

    result = train_sft(
        TrainConfig(
            kind="sft",
            base_model="demo",
            dataset=sft_dataset(tmp_path / "sft"),
            home=train_home,
            max_steps=8,
            learning_rate=1e-3,
            batch_size=8,
            max_length=128,
            logging_steps=1,
            threads=2,
            register=False,
            progress=False,
        )
    )
    assert result.model is None  # not asked to register
    client = MlflowClient(result.tracking_uri)
    losses = [
        m.value for m in sorted(client.get_metric_history(result.mlflow_run_id, "loss"), key=lambda m: m.step)
    ]
    assert len(losses) == 8
    assert losses[-1] < 0.7 * losses[0]
    evals = sorted(client.get_metric_history(result.mlflow_run_id, "eval_loss"), key=lambda m: m.step)
    assert evals[0].step == 0 and evals[-1].step == 8
    assert evals[-1].value < evals[0].value  # it learnt the new wording, not just the rows it saw
    assert (result.model_dir / "model.safetensors").is_file()
    assert result.tokens_per_second is not None and result.tokens_per_second > 0


def test_lora_dpo_saves_a_merged_model(tmp_path: Path, train_home: Path) -> None:
    import torch
    from safetensors.torch import load_file

    result = train_dpo(
        TrainConfig(
            kind="dpo",
            base_model="demo",
            dataset=preference_dataset(tmp_path / "prefs", eval_rows=4),
            home=train_home,
            max_steps=4,
            batch_size=4,
            max_length=96,
            lora=LoraSpec(r=4, alpha=8, dropout=0.0),
            learning_rate=5e-3,
            threads=2,
            eval_at_start=False,
            model_name="demo-lora",
            progress=False,
        )
    )
    files = {p.name for p in result.model_dir.iterdir()}
    assert "adapter_config.json" not in files and "model.safetensors" in files
    tuned = load_file(result.model_dir / "model.safetensors")
    base = load_file(result.base_model_dir / "model.safetensors")
    assert set(tuned) == set(base)  # the same plain architecture: no lora_A / lora_B left
    changed = [name for name in base if not torch.equal(base[name], tuned[name])]
    assert any("q_proj" in name for name in changed)
    assert result.model is not None and result.model.name == "demo-lora"
    assert "r=4" in (result.model_dir / "keel-model.json").read_text()


def test_gpu_bench_runs_on_cpu_and_reports_throughput(
    train_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from keel.training import bench_gpu

    out = train_home / "bench.json"
    args = ["--device", "cpu", "--kind", "sft", "--steps", "2", "--max-length", "64", "--batch-size", "4"]
    assert bench_gpu.main([*args, "--quiet", "--home", str(train_home), "--json", str(out)]) == 0
    [row] = json.loads(out.read_text())
    assert (row["kind"], row["device"], row["precision"], row["steps"]) == ("sft", "cpu", "fp32", 2)
    assert row["lora"].startswith("r=16,alpha=32") and row["tokens_per_second"] > 0
    assert "| sft | cpu | fp32 |" in capsys.readouterr().out
