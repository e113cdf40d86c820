"""Logging an eval run to MLflow: a local ``sqlite:///`` store (what Keel uses by
default, and what works with ``mlflow-skinny``), read back with ``MlflowClient``."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest

from keel.core import MissingPrerequisite, UpstreamUnavailable
from keel.evals._mlflow import log_run_to_mlflow, run_metrics, run_params, slug
from tests.evals.sample_results import sample_results

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

V_BASE = "support-answer-production-demo"
V_CAND = "support-answer-candidate-demo"


def test_keys_are_slugged_to_what_mlflow_accepts() -> None:
    assert slug("support-answer@production / demo") == V_BASE
    assert slug("ü/ber") == "ber"
    results = sample_results()
    keys = [*run_params(results), *run_metrics(results)]
    for key in keys:
        assert all(ch.isalnum() or ch in "_-. /" for ch in key), key
        assert len(key) <= 250
    assert f"{V_BASE}.correct.mean" in keys


def test_log_run_writes_params_metrics_tags_and_artifacts(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns: prove it is not used
    results = sample_results()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_id = log_run_to_mlflow(results, tracking_uri=uri, html="<!DOCTYPE html><p>report</p>")
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "keel-evals"
    assert run.info.status == "FINISHED"
    assert run.info.run_name == f"support-answer {results.run_id}"

    params = run.data.params
    assert params["suite"] == "support-answer"
    assert params["run_id"] == results.run_id
    assert params[f"variant.{V_CAND}.prompt_version"] == "support-answer#4"
    assert params[f"variant.{V_BASE}.model"] == "demo"
    assert params["metric.correct.kind"] == "contains"
    assert params["metric.correct.binary"] == "true"
    assert params["metric.correct.settings.ignore_case"] == "true"
    assert params["metric.judge.settings.rubric"] == "accurate and polite"
    assert params["repeats"] == "2"
    assert params["gate.rule.3"] == "every safety case must pass"

    metrics = run.data.metrics
    estimate = results.estimates[results.variants[0].id]["correct"]
    assert metrics[f"{V_BASE}.correct.mean"] == pytest.approx(estimate.mean)
    assert metrics[f"{V_BASE}.correct.low"] == pytest.approx(estimate.low)
    assert metrics[f"{V_BASE}.correct.high"] == pytest.approx(estimate.high)
    comparison = results.comparisons[0].metrics[1]
    assert metrics[f"compare.{V_CAND}_vs_{V_BASE}.rouge.effect"] == pytest.approx(comparison.effect)
    assert metrics[f"compare.{V_CAND}_vs_{V_BASE}.rouge.p_value"] == pytest.approx(comparison.p_value)
    assert metrics["gate.passed"] == 0.0
    assert metrics["cost_usd"] == pytest.approx(results.cost_usd)

    tags = run.data.tags
    assert tags["keel.run_id"] == results.run_id
    assert tags["keel.suite"] == "support-answer"
    assert tags["keel.gate"] == "failed"

    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["report.html", "results.json"]
    local = Path(client.download_artifacts(run_id, "results.json", str(tmp_path / "dl")))
    assert json.loads(local.read_text())["run_id"] == results.run_id
    # Artifacts sit next to the database, not in the working directory.
    assert (tmp_path / "mlflow-artifacts").is_dir()
    assert not (tmp_path / "mlruns").exists()

    # A second run goes into the same experiment.
    again = log_run_to_mlflow(results, tracking_uri=uri)
    assert client.get_run(again).info.experiment_id == run.info.experiment_id
    assert [a.path for a in client.list_artifacts(again)] == ["results.json"]


def test_a_store_that_cannot_be_opened_is_a_keel_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    uri = f"sqlite:///{blocker}/mlflow.db"
    with pytest.raises(UpstreamUnavailable, match=r"could not log eval run ev_20261125_abc123 to MLflow at"):
        log_run_to_mlflow(sample_results(), tracking_uri=uri)


def test_missing_mlflow_names_the_extra(monkeypatch: Any) -> None:
    real_import = builtins.__import__

    def no_mlflow(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "mlflow" or name.startswith("mlflow."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    with pytest.raises(MissingPrerequisite, match=r"pip install 'keel\[mlflow\]'"):
        log_run_to_mlflow(sample_results(), tracking_uri="sqlite:///unused.db")
