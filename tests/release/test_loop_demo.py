"""Acceptance, on the demo model: feedback through the API → an exported preference
dataset → DPO whose reward accuracy on the eval split passes 0.8 → a registered version
with its lineage → a passing gate → the canary's share in the request log → a rollback
that a running gateway follows back to the previous deployment.

This is ``keel demo loop`` (``run_loop``) with a shorter canary and no rollout."""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import func, select

from keel.cli._demo import ROUTE, demo_settings, run_loop
from keel.feedback import feedback
from keel.pipelines import load_preference_dataset, read_manifest
from keel.release import ReleaseWatcher, latest_gate, rollback, route_release
from keel.store import create_store_engine, recent_requests
from keel.training import default_tracking_uri, resolve_model
from tests.gateway.conftest import start_gateway
from tests.release.conftest import OPERATOR, LoopThread

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def test_the_loop_from_feedback_to_canary_and_back(tmp_path: Path, demo_model_dir: Path) -> None:
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "keel-demo").symlink_to(demo_model_dir, target_is_directory=True)
    out = io.StringIO()
    result = run_loop(
        home, console=Console(file=out, width=160), canary_requests=40, threads=2, rollout=False
    )
    printed = out.getvalue()
    engine = create_store_engine(f"sqlite:///{home / 'keel.db'}")

    # Feedback through POST /v1/feedback, on the requests the gateway served.
    with engine.connect() as connection:
        given = connection.execute(select(func.count()).select_from(feedback)).scalar()
    assert len(result.traffic) == 96 and given == result.feedback + 40  # + thumbs during the canary

    # The exported preference dataset, in TRL's conversational format.
    assert result.dataset is not None
    manifest = read_manifest(result.dataset)
    assert manifest["kind"] == "preference" and manifest["counts"]["total"] == 96
    train, evaluation = load_preference_dataset(result.dataset)
    assert len(train) + len(evaluation) == 96 and len(evaluation) >= 10
    for row in train + evaluation:
        assert row["prompt"][-1]["role"] == "user"
        assert [m["role"] for m in row["chosen"]] == ["assistant"] == [m["role"] for m in row["rejected"]]
        assert row["chosen"][0]["content"] != row["rejected"][0]["content"]

    # DPO learned the preferences; the model is registered with its lineage.
    assert result.reward_accuracy is not None and result.reward_accuracy > 0.8
    uri = default_tracking_uri(home)
    candidate = resolve_model("keel-demo", "candidate", tracking_uri=uri)
    assert candidate.version == result.candidate_version == 2 and result.baseline_version == 1
    assert candidate.tags["keel.kind"] == "dpo"
    assert candidate.tags["keel.dataset_hash"] == manifest["id"]
    assert candidate.run_id and candidate.tags["keel.training_run_id"] == candidate.run_id

    # The gate passed against production (v1) on the demo FAQ suite.
    gate = latest_gate(engine, "keel-demo", 2)
    assert result.gate_passed and gate is not None and gate.passed and gate.baseline_version == 1
    assert gate.eval_run_id == result.gate_run_id and f"/ui/evals/{gate.eval_run_id}" in printed

    # The canary's share (0.5 of 40 requests) in the request log.
    release = route_release(engine, ROUTE)
    assert release.canary is not None and release.canary.name == "keel-demo@v2"
    since = release.canary.created_at
    rows = [r for r in recent_requests(engine, limit=1000) if r.created_at >= since and r.route == ROUTE]
    canary_rows = [r for r in rows if r.deployment == "keel-demo@v2"]
    assert len(rows) == 40 and result.canary_requests == len(canary_rows)
    assert abs(len(canary_rows) - 20) < 4.5 * math.sqrt(40 * 0.25)
    assert all(r.status == 200 for r in rows)

    # A running gateway follows the rollback back to the configured demo model.
    gateway = start_gateway(demo_settings(home))
    loop = LoopThread()
    router = gateway.app.gateway.router
    watcher = ReleaseWatcher(gateway.app.settings, gateway.app.engine, apply=router.set_overlays)
    try:
        loop.run(watcher.start())
        assert router.get(ROUTE).canary is not None
        rollback(engine, ROUTE, actor=OPERATOR, reason="demo over")
        deadline = time.monotonic() + 10
        while router.get(ROUTE).canary is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert router.get(ROUTE).canary is None
        client = gateway.client()
        ids = set()
        for _ in range(5):
            raw = client.chat.completions.with_raw_response.create(
                model=ROUTE, messages=[{"role": "user", "content": "What is Keel?"}]
            )
            ids.add(raw.headers["x-request-id"])
        served = [r.deployment for r in gateway.records() if r.id in ids]
        assert served == ["local/keel-demo"] * 5
    finally:
        loop.run(watcher.stop())
        loop.stop()
        gateway.stop()
    assert route_release(engine, ROUTE).canary is None
    engine.dispose()
