"""Acceptance: DPO on the demo model with a small synthetic preference dataset. The
reward accuracy on the eval split rises above 0.8, the run is in MLflow with its
parameters, metrics and dataset hash, and the trained model is registered with its
lineage and loads as a plain Hugging Face model that prefers the chosen answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keel.pipelines import read_manifest
from keel.training import TrainConfig, default_tracking_uri, model_path, resolve_model, train_dpo
from tests.training.data import preference_dataset

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def test_dpo_learns_the_preferences_and_registers_the_model(tmp_path: Path, train_home: Path) -> None:
    from mlflow.tracking import MlflowClient

    dataset = preference_dataset(tmp_path / "prefs", eval_rows=20)
    result = train_dpo(
        TrainConfig(
            kind="dpo",
            base_model="demo",
            dataset=dataset,
            home=train_home,
            max_steps=40,
            learning_rate=2e-4,
            batch_size=8,
            eval_batch_size=20,
            max_length=128,
            eval_steps=20,
            save_steps=20,
            threads=2,
            aliases=("candidate",),
            progress=False,
        )
    )
    assert result.global_step == 40
    assert result.eval_rows == 20
    assert result.eval_metrics["eval_rewards/accuracies"] > 0.8
    assert result.eval_metrics["eval_rewards/margins"] > 0
    assert result.train_metrics["rewards/accuracies"] > 0.8

    # MLflow: the run, its parameters (with the dataset hash) and metrics by step.
    uri = default_tracking_uri(train_home)
    assert result.tracking_uri == uri
    client = MlflowClient(uri)
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    dataset_id = read_manifest(dataset)["id"]
    assert run.data.params["dataset_hash"] == dataset_id
    assert run.data.params["kind"] == "dpo"
    assert run.data.params["learning_rate"] == "0.0002"
    assert run.data.tags["keel.dataset_hash"] == dataset_id
    for key in ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"):
        assert key in run.data.metrics, key
    accuracy = [
        (m.step, m.value) for m in client.get_metric_history(run.info.run_id, "eval_rewards/accuracies")
    ]
    assert accuracy[0] == (0, 0.0)  # before training: the policy is the reference
    assert accuracy[-1][0] == 40 and accuracy[-1][1] > 0.8
    assert len(accuracy) == 3  # start, step 20, step 40 (the final evaluation is not repeated)

    # The registry: a new version with lineage, under the alias it was given.
    ref = resolve_model("keel-demo", "candidate", tracking_uri=uri)
    assert result.model is not None and ref.version == result.model.version
    assert ref.run_id == run.info.run_id
    assert ref.tags["keel.kind"] == "dpo"
    assert ref.tags["keel.dataset_hash"] == dataset_id
    assert ref.tags["keel.training_run_id"] == run.info.run_id
    assert Path(ref.tags["keel.base_model"]) == train_home / "models" / "keel-demo"
    local = model_path(ref)
    assert local == result.model_dir
    lineage = json.loads((local / "keel-model.json").read_text())
    assert lineage["dataset_hash"] == dataset_id and lineage["mlflow_run_id"] == run.info.run_id
    assert (result.output_dir / "checkpoint-40" / "trainer_state.json").is_file()

    # Independently of TRL's metric: the saved model prefers chosen over rejected,
    # relative to the base model, on the eval rows.
    rows = [json.loads(line) for line in (dataset / "eval.jsonl").read_text().splitlines()]
    assert _implicit_reward_accuracy(local, result.base_model_dir, rows) > 0.8


def _implicit_reward_accuracy(policy_dir: Path, reference_dir: Path, rows: list[dict[str, Any]]) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    policy = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    reference = AutoModelForCausalLM.from_pretrained(reference_dir).eval()

    def logp(model: Any, prompt: list[dict[str, str]], answer: list[dict[str, str]]) -> float:
        start = len(tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True))
        text = tokenizer.apply_chat_template(prompt + answer, tokenize=False)
        prompt_ids = tokenizer(text[:start], add_special_tokens=False)["input_ids"]
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits.log_softmax(-1)[0]
        return sum(float(logits[i - 1, ids[i]]) for i in range(len(prompt_ids), len(ids)))

    wins = 0
    for row in rows:
        chosen = logp(policy, row["prompt"], row["chosen"]) - logp(reference, row["prompt"], row["chosen"])
        rejected = logp(policy, row["prompt"], row["rejected"]) - logp(
            reference, row["prompt"], row["rejected"]
        )
        wins += chosen > rejected
    return wins / len(rows)
