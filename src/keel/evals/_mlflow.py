"""Logging an eval run to MLflow (the ``mlflow`` extra): parameters that say what was
run, metrics with their intervals, the gate as tags and a 0/1 metric, and the results
JSON and HTML report as artifacts, so eval runs sit next to training runs and models.

MLflow is imported inside the function: it is an optional extra and slow to import.
Everything goes through an ``MlflowClient`` bound to the given URI, never the fluent
API, so logging a run does not change the process's global MLflow state.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from keel.core import MissingPrerequisite, UpstreamUnavailable
from keel.evals._report_files import results_json
from keel.evals._results import RunResults

# Older tracking servers reject parameter values over 500 characters (newer: 6000).
_MAX_PARAM = 500
_MAX_KEY = 250
_MAX_TAG = 5000
_KEY_BAD = re.compile(r"[^A-Za-z0-9_\-. /]+")
_SLUG_BAD = re.compile(r"[^A-Za-z0-9_.]+")


def slug(name: str) -> str:
    """A name as one MLflow key segment: ``support-answer@production / demo`` →
    ``support-answer-production-demo``. MLflow keys allow only alphanumerics and
    ``_ - . space /``; the separators ``.`` and ``/`` are kept out of a segment's own
    characters by turning every run of anything else into one ``-``."""
    return _SLUG_BAD.sub("-", name).strip("-") or "_"


def _key(key: str) -> str:
    return _KEY_BAD.sub("_", key)[:_MAX_KEY]


def _unique_slugs(names: Sequence[str]) -> dict[str, str]:
    """Slugs for names that are distinct but could slug alike (``a/b`` and ``a b``)."""
    seen: dict[str, int] = {}
    slugs = {}
    for name in names:
        base = slug(name)
        count = seen.get(base, 0)
        seen[base] = count + 1
        slugs[name] = base if count == 0 else f"{base}-{count + 1}"
    return slugs


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    """Settings as ``prefix.key.subkey`` → text; lists and other values as JSON."""
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            yield from _flatten(f"{prefix}.{slug(str(key))}", value[key])
    elif isinstance(value, str):
        yield prefix, value
    else:
        yield prefix, json.dumps(value, sort_keys=True, default=str)


def run_params(results: RunResults) -> dict[str, str]:
    """The MLflow parameters of a run: what was run (suite, variants, metric settings,
    gate rules), not how it came out."""
    params: dict[str, Any] = {
        "suite": results.suite,
        "run_id": results.run_id,
        "n_cases": len(results.cases),
        "n_variants": len(results.variants),
        "repeats": max((c.repeat for c in results.cells), default=-1) + 1,
    }
    variant_slugs = _unique_slugs([v.id for v in results.variants])
    for variant in results.variants:
        prefix = f"variant.{variant_slugs[variant.id]}"
        params[f"{prefix}.id"] = variant.id
        params[f"{prefix}.prompt"] = variant.prompt
        params[f"{prefix}.prompt_version"] = variant.prompt_version
        params[f"{prefix}.model"] = variant.model
    metric_slugs = _unique_slugs([m.name for m in results.metrics])
    for metric in results.metrics:
        prefix = f"metric.{metric_slugs[metric.name]}"
        params[f"{prefix}.kind"] = metric.kind
        params[f"{prefix}.binary"] = metric.binary
        params.update(_flatten(f"{prefix}.settings", dict(metric.settings)))
    if results.gate is not None:
        params["gate.baseline"] = results.gate.baseline
        params["gate.candidate"] = results.gate.candidate
        for i, check in enumerate(results.gate.checks, 1):
            params[f"gate.rule.{i}"] = check.rule
    return {_key(k): _param_text(v) for k, v in params.items()}


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 1] + "…"


def run_metrics(results: RunResults) -> dict[str, float]:
    """The MLflow metrics: each variant's estimates, each comparison's effect and p-value,
    the gate (1 passed, 0 failed) and the cost."""
    variant_slugs = _unique_slugs([v.id for v in results.variants])
    metric_slugs = _unique_slugs([m.name for m in results.metrics])
    metrics: dict[str, float] = {
        "cost_usd": results.cost_usd,
        "n_cases": float(len(results.cases)),
        "calls": float(len(results.cells)),
        "failed_calls": float(sum(1 for c in results.cells if c.output.error)),
    }
    for variant, by_metric in results.estimates.items():
        v = variant_slugs.get(variant, slug(variant))
        for name, estimate in by_metric.items():
            m = metric_slugs.get(name, slug(name))
            metrics[f"{v}.{m}.mean"] = estimate.mean
            metrics[f"{v}.{m}.low"] = estimate.low
            metrics[f"{v}.{m}.high"] = estimate.high
    for pair in results.comparisons:
        b = variant_slugs.get(pair.baseline, slug(pair.baseline))
        c = variant_slugs.get(pair.candidate, slug(pair.candidate))
        for comparison in pair.metrics:
            prefix = f"compare.{c}_vs_{b}.{metric_slugs.get(comparison.metric, slug(comparison.metric))}"
            metrics[f"{prefix}.effect"] = comparison.effect
            metrics[f"{prefix}.low"] = comparison.low
            metrics[f"{prefix}.high"] = comparison.high
            metrics[f"{prefix}.p_value"] = comparison.p_value
            metrics[f"{prefix}.mde"] = comparison.mde
    if results.gate is not None:
        metrics["gate.passed"] = 1.0 if results.gate.passed else 0.0
    return {_key(k): float(v) for k, v in metrics.items()}


def run_tags(results: RunResults) -> dict[str, str]:
    gate = "none" if results.gate is None else "passed" if results.gate.passed else "failed"
    return {
        "keel.run_id": results.run_id,
        "keel.suite": results.suite,
        "keel.status": results.status,
        "keel.gate": gate,
        "keel.created_at": results.created_at.isoformat(),
        "keel.variants": ", ".join(v.id for v in results.variants)[:_MAX_TAG],
    }


def _sqlite_artifact_root(tracking_uri: str) -> str | None:
    """Artifacts of a local ``sqlite:///`` store go next to the database: MLflow's own
    default is ``./mlruns`` under whatever directory the command ran in."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    path = tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return (Path(path).resolve().parent / "mlflow-artifacts").as_uri()


def log_run_to_mlflow(
    results: RunResults,
    *,
    tracking_uri: str | None,
    experiment: str = "keel-evals",
    html: str | None = None,
) -> str:
    """Log ``results`` as one MLflow run in ``experiment`` (created when missing) and
    return the MLflow run id. ``tracking_uri`` None leaves it to MLflow's own
    configuration (``MLFLOW_TRACKING_URI``); Keel's CLI passes
    ``sqlite:///<KEEL_HOME>/mlflow.db``."""
    try:
        from mlflow.entities import Metric, Param
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise MissingPrerequisite(
            "MLflow logging needs the mlflow extra: pip install 'keel[mlflow]'"
        ) from exc

    where = tracking_uri or "the default MLflow tracking URI"
    run_id: str | None = None
    try:
        # Inside the try: the client refuses some stores when built (MLflow 3 refuses a
        # ``file:`` store unless MLFLOW_ALLOW_FILE_STORE is set).
        client = MlflowClient(tracking_uri=tracking_uri)
        found = client.get_experiment_by_name(experiment)
        if found is None:
            experiment_id = client.create_experiment(
                experiment, artifact_location=_sqlite_artifact_root(tracking_uri or "")
            )
        else:
            experiment_id = found.experiment_id
            if found.lifecycle_stage == "deleted":
                client.restore_experiment(experiment_id)
        run = client.create_run(
            experiment_id,
            start_time=int(results.created_at.timestamp() * 1000),
            tags=run_tags(results),
            run_name=f"{results.suite} {results.run_id}",
        )
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        params = [Param(k, v) for k, v in run_params(results).items()]
        metrics = [Metric(k, v, now, 0) for k, v in run_metrics(results).items()]
        for i in range(0, len(params), 100):
            client.log_batch(run_id, params=params[i : i + 100])
        for i in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[i : i + 1000])
        with tempfile.TemporaryDirectory(prefix="keel-mlflow-") as folder:
            json_file = Path(folder) / "results.json"
            json_file.write_bytes(results_json(results))
            client.log_artifact(run_id, str(json_file))
            if html is not None:
                html_file = Path(folder) / "report.html"
                html_file.write_text(html, encoding="utf-8")
                client.log_artifact(run_id, str(html_file))
        client.set_terminated(run_id, "FINISHED")
    except (MlflowException, OSError) as exc:
        if run_id is not None:
            # The store already failed once; the first error is the one to report.
            with contextlib.suppress(MlflowException, OSError):
                client.set_terminated(run_id, "FAILED")
        raise UpstreamUnavailable(
            f"could not log eval run {results.run_id} to MLflow at {where}: {exc}"
        ) from exc
    return run_id
