"""Datasets a run reads, and the inputs a run must refuse at once (before torch loads):
a base model that does not exist, an empty dataset, malformed rows, resuming nothing,
training over an earlier run's checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from keel.core import InvalidRequest, NotFound
from keel.pipelines import read_manifest
from keel.training import TrainConfig, load_training_data, train_dpo, train_sft
from tests.training.data import preference_dataset, preference_rows, sft_dataset, write_dataset


def test_exported_preference_dataset_loads_with_its_manifest_id(tmp_path: Path) -> None:
    folder = preference_dataset(tmp_path / "prefs", eval_rows=5)
    data = load_training_data("dpo", folder)
    assert len(data.eval) == 5
    assert len(data.train) == len(preference_rows()) - 5
    assert data.dataset_hash == read_manifest(folder)["id"]
    row = data.train[0]
    assert set(row) == {"prompt", "chosen", "rejected"}
    assert row["chosen"][0]["role"] == "assistant"


def test_sft_rows_become_prompt_and_completion(tmp_path: Path) -> None:
    data = load_training_data("sft", sft_dataset(tmp_path / "sft"))
    row = data.train[0]
    assert row["prompt"][-1]["role"] == "user"
    assert row["completion"] == [{"role": "assistant", "content": row["completion"][0]["content"]}]


def test_plain_jsonl_file_is_read_and_hashed_by_content(tmp_path: Path) -> None:
    file = tmp_path / "prefs.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in preference_rows()[:3]))
    data = load_training_data("dpo", file)
    assert (len(data.train), len(data.eval)) == (3, 0)
    first = data.dataset_hash
    file.write_text("".join(json.dumps(r) + "\n" for r in preference_rows()[:2]))
    assert load_training_data("dpo", file).dataset_hash != first


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "hi", "chosen": "a"}, "missing 'rejected'"),
        ({"prompt": "hi", "chosen": "same", "rejected": "same"}, "identical"),
        ({"prompt": [], "chosen": "a", "rejected": "b"}, "non-empty list"),
    ],
)
def test_malformed_preference_rows_are_refused_with_their_row(
    tmp_path: Path, row: dict, message: str
) -> None:
    file = tmp_path / "bad.jsonl"
    file.write_text(json.dumps(preference_rows()[0]) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(InvalidRequest, match=message) as caught:
        load_training_data("dpo", file)
    assert "train row 2" in caught.value.message


def test_base_model_that_does_not_exist_fails_before_training(tmp_path: Path, bare_home: Path) -> None:
    dataset = preference_dataset(tmp_path / "prefs")
    missing = tmp_path / "no-such-model"
    with pytest.raises(NotFound, match="no such directory"):
        train_dpo(TrainConfig(kind="dpo", base_model=str(missing), dataset=dataset, home=bare_home))
    with pytest.raises(NotFound, match="Hub ids are not downloaded"):
        train_dpo(
            TrainConfig(kind="dpo", base_model="meta-llama/Llama-3-8B", dataset=dataset, home=bare_home)
        )
    not_a_model = tmp_path / "folder"
    not_a_model.mkdir()
    with pytest.raises(InvalidRequest, match=r"no config\.json"):
        train_sft(TrainConfig(kind="sft", base_model=str(not_a_model), dataset=dataset, home=bare_home))
    # Nothing was started: no MLflow store, no run directory.
    assert list(bare_home.iterdir()) == []


def test_empty_dataset_is_refused(tmp_path: Path, bare_home: Path) -> None:
    empty_file = tmp_path / "empty.jsonl"
    empty_file.write_text("\n")
    with pytest.raises(InvalidRequest, match="no training rows"):
        train_dpo(TrainConfig(kind="dpo", base_model="demo", dataset=empty_file, home=bare_home))
    # An export whose rows all went to the eval split has nothing to train on either.
    eval_only = write_dataset(tmp_path / "eval-only", [], preference_rows()[:2])
    with pytest.raises(InvalidRequest, match="no training rows"):
        train_dpo(TrainConfig(kind="dpo", base_model="demo", dataset=eval_only, home=bare_home))
    with pytest.raises(NotFound, match="does not exist"):
        train_dpo(TrainConfig(kind="dpo", base_model="demo", dataset=tmp_path / "nowhere", home=bare_home))
    assert list(bare_home.iterdir()) == []


def test_resume_needs_a_checkpoint_and_a_new_run_refuses_old_ones(tmp_path: Path, bare_home: Path) -> None:
    dataset = preference_dataset(tmp_path / "prefs")
    out = tmp_path / "run"
    with pytest.raises(InvalidRequest, match="nothing to resume"):
        train_dpo(
            TrainConfig(
                kind="dpo", base_model="demo", dataset=dataset, home=bare_home, output_dir=out, resume=True
            )
        )
    (out / "checkpoint-4").mkdir(parents=True)
    (out / "checkpoint-4" / "trainer_state.json").write_text("{}")
    with pytest.raises(InvalidRequest, match="already holds checkpoints"):
        train_dpo(TrainConfig(kind="dpo", base_model="demo", dataset=dataset, home=bare_home, output_dir=out))
    (out / "keel-run.json").write_text(json.dumps({"dataset_hash": "sha256:other"}))
    with pytest.raises(InvalidRequest, match="trained on dataset sha256:other"):
        train_dpo(
            TrainConfig(
                kind="dpo", base_model="demo", dataset=dataset, home=bare_home, output_dir=out, resume=True
            )
        )


def test_cli_reports_bad_input_as_one_line(
    tmp_path: Path, bare_home: Path, cli_app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEEL_HOME", str(bare_home))
    dataset = preference_dataset(tmp_path / "prefs")
    result = CliRunner().invoke(cli_app, ["train", "dpo", str(dataset), "--base", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: base model {tmp_path / 'nope'}: no such directory"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = CliRunner().invoke(cli_app, ["train", "sft", str(empty)])
    assert result.exit_code == 1
    assert "has no training rows" in result.output
    result = CliRunner().invoke(cli_app, ["train", "dpo", str(dataset), "--lora", "r=zero"])
    assert result.exit_code == 1
    assert "lora: r: not a number" in result.output
