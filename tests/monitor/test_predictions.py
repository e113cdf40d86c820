"""The prediction-log API on a real port: logging, schema mismatches as 400s naming the
feature, labels, drift over features and predictions, accuracy and calibration."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from sqlalchemy import Engine

from keel.access import Principal
from keel.core import AuthenticationError
from keel.monitor import create_predictions_api, expected_calibration_error

NOW = datetime.now(UTC)


class _Keys:
    async def authenticate_async(self, token: str) -> Principal:
        if token != "sk-good":
            raise AuthenticationError("Invalid API key: no such key.")
        return Principal(key_id="k1", name="app", role="service", team_id="t1")


@pytest.fixture
def api(engine: Engine) -> Iterator[httpx.Client]:
    app = create_predictions_api(engine, _Keys())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    for _ in range(1000):
        if server.started:
            break
        threading.Event().wait(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": "Bearer sk-good"},
        timeout=30,
    ) as client:
        yield client
    server.should_exit = True
    thread.join(timeout=10)


def _batch(
    n: int, *, start: datetime, shift: float = 0.0, seed: int = 0, model: str = "churn", span: float = 3000.0
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        age = float(rng.normal(40 + shift, 8))
        plan = str(rng.choice(["basic", "pro", "team"], p=[0.6, 0.3, 0.1]))
        confidence = float(rng.uniform(0.5, 1.0))
        out.append(
            {
                "model": model,
                "id": f"{seed}-{i}",
                "features": {"age": age, "plan": plan, "trial": bool(i % 2)},
                "prediction": "churn" if age > 45 else "stay",
                "confidence": confidence,
                "at": (start + timedelta(seconds=i * span / n)).isoformat(),
            }
        )
    return out


def test_predictions_labels_drift_and_performance(api: httpx.Client) -> None:
    reference = _batch(400, start=NOW - timedelta(hours=5), seed=1)
    current = _batch(300, start=NOW - timedelta(minutes=55), shift=10.0, seed=2)
    for batch in (reference, current):
        response = api.post("/predictions", json={"predictions": batch})
        assert response.status_code == 201, response.text
        assert response.json()["logged"] == len(batch)
    drift = api.get("/models/churn/drift", params={"window": "1h", "reference": "6h"})
    assert drift.status_code == 200, drift.text
    by_signal = {r["signal"]: r for r in drift.json()["results"]}
    assert set(by_signal) == {"feature.age", "feature.plan", "feature.trial", "prediction", "confidence"}
    assert by_signal["feature.age"]["drifted"] and by_signal["prediction"]["drifted"]
    assert not by_signal["feature.plan"]["drifted"] and not by_signal["confidence"]["drifted"]

    # Labels for the current hour: right 3 times out of 4.
    labels = [
        {"model": "churn", "id": p["id"], "label": p["prediction"] if i % 4 else "other"}
        for i, p in enumerate(current)
    ]
    response = api.post("/labels", json={"labels": [*labels, {"model": "churn", "id": "nope", "label": "x"}]})
    assert response.json() == {"updated": 300, "unknown_ids": ["nope"]}
    points = api.get("/models/churn/performance", params={"since": "2h", "step": "1h"}).json()["points"]
    labelled = [p for p in points if p["labeled"]]
    assert sum(p["labeled"] for p in labelled) == 300
    # Hourly buckets fall where the clock puts them: the current hour's labels may split
    # across two, so the right-3-in-4 holds for their weighted mean, exactly.
    right = sum(p["accuracy"] * p["labeled"] for p in labelled)
    assert round(right) == 225
    assert all(p["ece"] is not None and 0 <= p["ece"] <= 1 for p in labelled)


def test_mismatched_feature_schemas_are_400s_naming_the_feature(api: httpx.Client) -> None:
    assert api.post("/predictions", json=_batch(5, start=NOW)).status_code == 201
    changed_type = _batch(1, start=NOW, seed=9)
    changed_type[0]["features"]["age"] = "forty"
    response = api.post("/predictions", json={"predictions": changed_type})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "feature_schema_mismatch"
    assert "feature 'age' of model 'churn' is numeric, not categorical" in error["message"]
    assert error["param"] == "predictions[0].features.age"

    new_feature = _batch(1, start=NOW, seed=10)
    new_feature[0]["features"]["country"] = "NZ"
    error = api.post("/predictions", json=new_feature).json()["error"]
    assert "model 'churn' has no feature 'country' (its features: age, plan, trial)" in error["message"]
    assert error["param"] == "predictions[0].features.country"

    # A refused batch logs nothing, not even its valid items.
    mixed = _batch(3, start=NOW, seed=11) + new_feature
    assert api.post("/predictions", json=mixed).status_code == 400
    assert api.post("/predictions", json=_batch(3, start=NOW, seed=11)).status_code == 201


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "no predictions given"),
        ({"rows": []}, "expected a JSON list"),
        (
            [{"model": "m", "id": "1", "features": {"x": [1, 2]}}],
            "predictions[0].features.x must be a number",
        ),
        ([{"model": "m", "id": "1", "confidence": 1.5}], "confidence must be a number from 0 to 1"),
        ([{"id": "1"}], "predictions[0].model must be a non-empty string"),
        ([{"model": "m", "id": "1", "at": "yesterday"}], "not a time"),
    ],
)
def test_bad_batches_are_clear_400s(api: httpx.Client, body: Any, message: str) -> None:
    response = api.post("/predictions", json=body)
    assert response.status_code == 400 and message in response.json()["error"]["message"]


def test_keys_duplicates_and_unknown_models(api: httpx.Client) -> None:
    assert api.post("/predictions", json=[], headers={"Authorization": "Bearer sk-bad"}).status_code == 401
    assert api.post("/predictions", json=_batch(2, start=NOW, model="m2")).status_code == 201
    duplicate = api.post("/predictions", json=_batch(1, start=NOW, model="m2"))
    assert duplicate.status_code == 400 and duplicate.json()["error"]["code"] == "duplicate_prediction"
    missing = api.get("/models/nobody/drift")
    assert missing.status_code == 404 and "no predictions logged for model 'nobody'" in missing.text
    empty = api.get("/models/m2/drift", params={"window": "1h", "reference": "1d"})
    assert empty.status_code == 400 and "reference window" in empty.json()["error"]["message"]


def test_expected_calibration_error() -> None:
    # Perfectly calibrated: 80 % confident and right 80 % of the time.
    assert expected_calibration_error([0.8] * 10, [True] * 8 + [False] * 2) == pytest.approx(0.0)
    assert expected_calibration_error([0.9] * 4, [True, False, False, False]) == pytest.approx(0.65)
