"""MLflow for training runs: the default local store, a run per training run (kept
across a resume), parameters, metrics by step, lineage tags.

Everything goes through an ``MlflowClient`` bound to the URI, never MLflow's fluent API
or transformers' own MLflow callback: both keep process-global state (an active run,
environment variables), which a library call must not leave behind. With
``mlflow-skinny`` the local store is ``sqlite:///`` (the tracking and the registry
tables in one file); artifacts of such a store go in ``mlflow-artifacts/`` next to the
database, not MLflow's default ``./mlruns`` under whatever directory the command ran in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from keel.core import MissingPrerequisite, UpstreamUnavailable

_MAX_PARAM = 500  # older tracking servers refuse longer parameter values
_KEY_BAD = re.compile(r"[^A-Za-z0-9_\-. /]+")


def default_tracking_uri(home: Path) -> str:
    """Keel's local MLflow store: ``sqlite:///<home>/mlflow.db``."""
    return f"sqlite:///{Path(home).expanduser().resolve() / 'mlflow.db'}"


def artifact_root(tracking_uri: str) -> str | None:
    """Where a local ``sqlite:///`` store's artifacts go (a folder next to the
    database); None for other stores, which have their own."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    path = tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return (Path(path).resolve().parent / "mlflow-artifacts").as_uri()


def mlflow_client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` for tracking and the registry at ``tracking_uri``."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise MissingPrerequisite("MLflow needs the mlflow extra: pip install 'keel[mlflow]'") from exc
    with mlflow_errors(tracking_uri):
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@contextmanager
def mlflow_errors(tracking_uri: str) -> Iterator[None]:
    """MLflow's own failures (store unreachable, bad URI) as UpstreamUnavailable."""
    try:
        from mlflow.exceptions import MlflowException
    except ImportError as exc:
        raise MissingPrerequisite("MLflow needs the mlflow extra: pip install 'keel[mlflow]'") from exc
    try:
        yield
    except MlflowException as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            raise
        raise UpstreamUnavailable(f"MLflow at {tracking_uri}: {exc.message}") from exc


def metric_key(key: str) -> str:
    return _KEY_BAD.sub("_", key)[:250]


def param_text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 1] + "…"


class TrackingRun:
    """One MLflow run, opened or reopened (a resumed training run continues its run)."""

    def __init__(self, client: Any, tracking_uri: str, run_id: str) -> None:
        self.client = client
        self.tracking_uri = tracking_uri
        self.run_id = run_id

    @classmethod
    def open(
        cls,
        tracking_uri: str,
        *,
        experiment: str,
        run_name: str,
        tags: Mapping[str, str],
        existing_run_id: str | None = None,
    ) -> TrackingRun:
        client = mlflow_client(tracking_uri)
        with mlflow_errors(tracking_uri):
            if existing_run_id is not None:
                try:
                    client.get_run(existing_run_id)
                except Exception:  # gone (the store was reset): start a new run
                    existing_run_id = None
                else:
                    client.update_run(existing_run_id, status="RUNNING")
                    return cls(client, tracking_uri, existing_run_id)
            found = client.get_experiment_by_name(experiment)
            if found is None:
                root = artifact_root(tracking_uri)
                experiment_id = client.create_experiment(experiment, artifact_location=root)
            else:
                experiment_id = found.experiment_id
                if found.lifecycle_stage == "deleted":
                    client.restore_experiment(experiment_id)
            run = client.create_run(experiment_id, tags=dict(tags), run_name=run_name)
            return cls(client, tracking_uri, run.info.run_id)

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        have = self.client.get_run(self.run_id).data.params
        # Parameters are immutable in MLflow: a resumed run logs only new ones.
        entries = [
            Param(metric_key(k), param_text(v)) for k, v in params.items() if metric_key(k) not in have
        ]
        with mlflow_errors(self.tracking_uri):
            for i in range(0, len(entries), 100):
                self.client.log_batch(self.run_id, params=entries[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        entries = [Metric(metric_key(k), float(v), now, step) for k, v in metrics.items()]
        with mlflow_errors(self.tracking_uri):
            for i in range(0, len(entries), 1000):
                self.client.log_batch(self.run_id, metrics=entries[i : i + 1000])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        with mlflow_errors(self.tracking_uri):
            for key, value in tags.items():
                self.client.set_tag(self.run_id, key, value)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        with mlflow_errors(self.tracking_uri):
            if path.is_dir():
                self.client.log_artifacts(self.run_id, str(path), artifact_path)
            else:
                self.client.log_artifact(self.run_id, str(path), artifact_path)

    def finish(self, status: str = "FINISHED") -> None:
        with mlflow_errors(self.tracking_uri):
            self.client.set_terminated(self.run_id, status)


def numeric_metrics(logs: Mapping[str, Any]) -> dict[str, float]:
    """The numbers in a trainer's log record (it also holds text and None)."""
    return {
        key: float(value)
        for key, value in logs.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and value == value
    }
