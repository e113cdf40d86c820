"""Classic-ML prediction logs: storing predictions and later labels, each model's
feature schema, and drift and performance over them.

A model's features are fixed by the first batch that logs it: each is numeric
(int/float) or categorical (string/bool); a later batch with a feature of another type
or a feature never seen is refused, naming it (a model whose features change is a new
model: log it as ``churn@v2``). A feature may be missing or null in any prediction.

Drift reads the predictions of both windows directly (prediction logs are far smaller
than LLM traffic): every feature, the prediction and the confidence, with the same
detectors and defaults as the request log's signals. Performance (accuracy, mean
absolute error for numeric predictions, expected calibration error) is computed per
time step over the predictions that have a label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from sqlalchemy import Engine, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from keel.core import InvalidRequest, NotFound
from keel.core._settings_monitor import MonitorSettings, SignalMonitorSettings
from keel.monitor._detectors import build_detector, default_detector, run_detector
from keel.monitor._drift import DriftResult
from keel.monitor._tables import monitor_features, monitor_predictions
from keel.monitor._types import CategoricalData, DataKind, NumericData, SignalData
from keel.monitor._windows import WindowSpec

PREDICTIONS = "predictions"
MAX_BATCH = 10_000
FeatureKind = Literal["numeric", "categorical"]


def _kind_of(value: Any) -> FeatureKind | None:
    if value is None:
        return None
    if isinstance(value, (bool, str)):
        return "categorical"
    if isinstance(value, int | float):
        return "numeric"
    raise ValueError("must be a number, a string, a boolean or null")


def _moment(value: Any, where: str) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, str):
            found = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return found if found.tzinfo is not None else found.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise InvalidRequest(f"{where}: not a time (ISO 8601 or Unix seconds)", param=where)


def _text(value: Any, where: str, limit: int = 255) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise InvalidRequest(f"{where} must be a non-empty string", param=where)
    text = str(value)
    if len(text) > limit:
        raise InvalidRequest(f"{where} is longer than {limit} characters", param=where)
    return text


@dataclass(frozen=True)
class _Prediction:
    model: str
    id: str
    at: datetime
    features: dict[str, Any]
    prediction: Any
    confidence: float | None


def _parse(items: Sequence[Any]) -> list[_Prediction]:
    if not items:
        raise InvalidRequest("no predictions given", param="predictions")
    if len(items) > MAX_BATCH:
        raise InvalidRequest(f"at most {MAX_BATCH:,} predictions a batch", param="predictions")
    out = []
    for i, item in enumerate(items):
        where = f"predictions[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidRequest(f"{where} must be an object", param=where)
        unknown = sorted(set(item) - {"model", "id", "features", "prediction", "confidence", "at"})
        if unknown:
            raise InvalidRequest(f"{where}: unknown field {unknown[0]!r}", param=f"{where}.{unknown[0]}")
        features = item.get("features", {})
        if not isinstance(features, Mapping):
            raise InvalidRequest(f"{where}.features must be an object", param=f"{where}.features")
        for name, value in features.items():
            try:
                _kind_of(value)
            except ValueError as exc:
                raise InvalidRequest(
                    f"{where}.features.{name} {exc}", param=f"{where}.features.{name}"
                ) from None
        try:
            _kind_of(item.get("prediction"))
        except ValueError as exc:
            raise InvalidRequest(f"{where}.prediction {exc}", param=f"{where}.prediction") from None
        confidence = item.get("confidence")
        if confidence is not None and (
            isinstance(confidence, bool)
            or not isinstance(confidence, int | float)
            or not 0 <= confidence <= 1
        ):
            raise InvalidRequest(
                f"{where}.confidence must be a number from 0 to 1", param=f"{where}.confidence"
            )
        out.append(
            _Prediction(
                _text(item.get("model"), f"{where}.model"),
                _text(item.get("id"), f"{where}.id"),
                _moment(item.get("at"), f"{where}.at"),
                dict(features),
                item.get("prediction"),
                None if confidence is None else float(confidence),
            )
        )
    return out


def log_predictions(engine: Engine, items: Sequence[Any], *, team_id: str | None = None) -> int:
    """Store a batch (all or nothing); returns how many. A feature outside the model's
    schema, or of another type, is an ``InvalidRequest`` naming it."""
    parsed = _parse(items)
    with engine.begin() as connection:
        models = sorted({p.model for p in parsed})
        known: dict[str, dict[str, str]] = {m: {} for m in models}
        for row in connection.execute(select(monitor_features).where(monitor_features.c.model.in_(models))):
            known[row.model][row.feature] = row.kind
        new_schema: list[dict[str, str]] = []
        for model in models:
            schema = known[model]
            fixed = bool(schema)
            for i, p in enumerate(parsed):
                if p.model != model:
                    continue
                for name, value in p.features.items():
                    kind = _kind_of(value)
                    where = f"predictions[{i}].features.{name}"
                    if name not in schema:
                        if fixed:
                            names = ", ".join(sorted(schema))
                            raise InvalidRequest(
                                f"model {model!r} has no feature {name!r} (its features: {names}); "
                                "log a model whose features changed under a new name",
                                param=where,
                                code="feature_schema_mismatch",
                            )
                        if kind is not None:
                            schema[name] = kind
                            new_schema.append({"model": model, "feature": name, "kind": kind})
                    elif kind is not None and kind != schema[name]:
                        raise InvalidRequest(
                            f"feature {name!r} of model {model!r} is {schema[name]}, not {kind} "
                            f"(got {value!r})",
                            param=where,
                            code="feature_schema_mismatch",
                        )
        if new_schema:
            connection.execute(insert(monitor_features), new_schema)
        try:
            connection.execute(
                insert(monitor_predictions),
                [
                    {
                        "model": p.model,
                        "id": p.id,
                        "at": p.at,
                        "features": p.features,
                        "prediction": p.prediction,
                        "confidence": p.confidence,
                        "team_id": team_id,
                    }
                    for p in parsed
                ],
            )
        except IntegrityError:
            raise InvalidRequest(
                "a prediction with one of these ids is already logged for its model "
                "(ids are unique per model)",
                param="predictions",
                code="duplicate_prediction",
            ) from None
    return len(parsed)


def log_labels(engine: Engine, items: Sequence[Any]) -> tuple[int, list[str]]:
    """Attach actual labels to logged predictions: (how many updated, ids not found)."""
    if not items:
        raise InvalidRequest("no labels given", param="labels")
    if len(items) > MAX_BATCH:
        raise InvalidRequest(f"at most {MAX_BATCH:,} labels a batch", param="labels")
    parsed = []
    for i, item in enumerate(items):
        where = f"labels[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidRequest(f"{where} must be an object", param=where)
        if "label" not in item:
            raise InvalidRequest(f"{where}.label is required", param=f"{where}.label")
        try:
            _kind_of(item["label"])
        except ValueError as exc:
            raise InvalidRequest(f"{where}.label {exc}", param=f"{where}.label") from None
        parsed.append(
            (
                _text(item.get("model"), f"{where}.model"),
                _text(item.get("id"), f"{where}.id"),
                item["label"],
                _moment(item.get("at"), f"{where}.at"),
            )
        )
    updated, missing = 0, []
    with engine.begin() as connection:
        for model, prediction_id, label, at in parsed:
            done = connection.execute(
                update(monitor_predictions)
                .where(monitor_predictions.c.model == model, monitor_predictions.c.id == prediction_id)
                .values(label=label, labeled_at=at)
            )
            if done.rowcount:
                updated += 1
            else:
                missing.append(prediction_id)
    return updated, missing


def feature_schema(engine: Engine, model: str) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(select(monitor_features).where(monitor_features.c.model == model)).all()
    if not rows:
        raise NotFound(f"no predictions logged for model {model!r}")
    return {row.feature: row.kind for row in rows}


def _rows(engine: Engine, model: str, start: datetime, end: datetime) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(
                    monitor_predictions.c.features,
                    monitor_predictions.c.prediction,
                    monitor_predictions.c.confidence,
                    monitor_predictions.c.label,
                    monitor_predictions.c.at,
                ).where(
                    and_(
                        monitor_predictions.c.model == model,
                        monitor_predictions.c.at >= start,
                        monitor_predictions.c.at < end,
                    )
                )
            )
        )


def _data(kind: str, values: list[Any]) -> SignalData:
    if kind == "numeric":
        return NumericData.of([float(v) for v in values if v is not None])
    return CategoricalData.of(
        [str(v).lower() if isinstance(v, bool) else str(v) for v in values if v is not None]
    )


def prediction_drift(
    engine: Engine,
    model: str,
    *,
    windows: WindowSpec,
    now: datetime | None = None,
    settings: MonitorSettings | None = None,
) -> list[DriftResult]:
    """Drift of every feature (``feature.<name>``), the prediction and the confidence."""
    settings = settings or MonitorSettings()
    now = now or datetime.now(UTC)
    schema = feature_schema(engine, model)
    ref_start, ref_end, cur_start, cur_end = windows.ranges(now)
    reference, current = _rows(engine, model, ref_start, ref_end), _rows(engine, model, cur_start, cur_end)
    if not current:
        raise InvalidRequest(f"no predictions of model {model!r} in the current window")
    if not reference:
        raise InvalidRequest(f"no predictions of model {model!r} in the reference window")
    columns: list[tuple[str, str, Any]] = [
        (f"feature.{name}", kind, lambda row, name=name: row.features.get(name))
        for name, kind in sorted(schema.items())
    ]
    sample = next((r.prediction for r in reference + current if r.prediction is not None), None)
    if sample is not None:
        columns.append(("prediction", _kind_of(sample) or "categorical", lambda row: row.prediction))
    columns.append(("confidence", "numeric", lambda row: row.confidence))
    results = []
    for name, kind, get in columns:
        ref_data, cur_data = _data(kind, [get(r) for r in reference]), _data(kind, [get(r) for r in current])
        own = settings.signals.get(name, SignalMonitorSettings())
        data_kind: DataKind = "numeric" if kind == "numeric" else "categorical"
        detector = own.detector or default_detector(data_kind, ref_data.n, cur_data.n)
        base: dict[str, Any] = {
            "at": now, "source": PREDICTIONS, "route": model, "prompt": "", "model": "", "signal": name,
            "kind": data_kind, "detector": detector, "window_start": cur_start, "reference_start": ref_start,
            "reference_end": ref_end, "n_reference": ref_data.n, "n_current": cur_data.n,
            "reference_mean": ref_data.mean() if isinstance(ref_data, NumericData) else None,
            "current_mean": cur_data.mean() if isinstance(cur_data, NumericData) else None,
        }  # fmt: skip
        minimum = own.min_samples or settings.min_samples
        if min(ref_data.n, cur_data.n) < minimum:
            skipped = {
                "skipped": f"{min(ref_data.n, cur_data.n)} observations on one side (min_samples {minimum})"
            }
            results.append(
                DriftResult(**base, score=None, p_value=None, threshold=None, drifted=False, details=skipped)
            )
            continue
        found = build_detector(
            detector, own.options if own.detector else {}, location=f"monitor.signals.{name}"
        )
        outcome = run_detector(found, ref_data, cur_data)
        results.append(
            DriftResult(
                **base,
                score=outcome.score,
                p_value=outcome.p_value,
                threshold=outcome.threshold,
                drifted=outcome.drifted,
                details=dict(outcome.details),
            )
        )
    return results


@dataclass(frozen=True)
class PerformancePoint:
    """Labelled predictions made in [start, start + step)."""

    start: datetime
    labeled: int
    accuracy: float | None
    mean_absolute_error: float | None
    # Expected calibration error over 10 confidence bins (None without confidences).
    ece: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "labeled": self.labeled,
            "accuracy": self.accuracy,
            "mean_absolute_error": self.mean_absolute_error,
            "ece": self.ece,
        }


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Σ over equal-width confidence bins of |accuracy − mean confidence| × share."""
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    index = np.minimum((conf * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            total += members.mean() * abs(hit[members].mean() - conf[members].mean())
    return float(total)


def prediction_performance(
    engine: Engine, model: str, *, start: datetime, end: datetime, step: timedelta
) -> list[PerformancePoint]:
    """Accuracy (or MAE) and calibration per ``step`` over the labelled predictions."""
    feature_schema(engine, model)  # NotFound for a model never logged
    rows = [r for r in _rows(engine, model, start, end) if r.label is not None]
    points = []
    at = start
    while at < end:
        members = [r for r in rows if at <= r.at < at + step]
        numeric = [
            r for r in members if _kind_of(r.prediction) == "numeric" and _kind_of(r.label) == "numeric"
        ]
        exact = [r for r in members if r not in numeric and r.prediction is not None]
        correct = [r.prediction == r.label for r in exact]
        with_confidence = [(r.confidence, r.prediction == r.label) for r in exact if r.confidence is not None]
        points.append(
            PerformancePoint(
                at,
                len(members),
                float(np.mean(correct)) if correct else None,
                float(np.mean([abs(float(r.prediction) - float(r.label)) for r in numeric]))
                if numeric
                else None,
                expected_calibration_error([c for c, _ in with_confidence], [h for _, h in with_confidence])
                if with_confidence
                else None,
            )
        )
        at += step
    return points
