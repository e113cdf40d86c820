"""``run_gate``: an eval suite on two model versions served by a real gateway (fake
upstreams stand in for them); a failing gate blocks promotion."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from keel.core import ConfigError, PermissionDenied
from keel.evals import load_suite, read_run
from keel.release import GateSide, latest_gate, list_gates, model_suite, plan_gate, promote, run_gate
from keel.store import create_store_engine
from tests.fakes import FakeDeployment, FakeUpstream, Fault
from tests.gateway.conftest import fake_settings, start_gateway
from tests.release.conftest import OPERATOR

QUESTIONS = [f"question {i}" for i in range(10)]


def _suite(folder: Path, *, gate: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    # The fake upstream answers "echo: <the user's message>" by default.
    rows = [{"id": f"q{i}", "question": q, "expected": f"echo: {q}"} for i, q in enumerate(QUESTIONS)]
    (folder / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = (
        "name: unit-release\n"
        "dataset: cases.jsonl\n"
        "prompts:\n"
        "  - name: production\n    messages: [{role: user, content: '{{ question }}'}]\n"
        "  - name: shouty\n    messages: [{role: user, content: 'LOUDLY {{ question }}'}]\n"
        "models: [some-model]\n"
        "concurrency: 4\n"
        "scorers: [exact_match]\n"
    )
    if gate:
        text += (
            "gate:\n  baseline: production\n  candidate: shouty\n"
            "  rules: [{metric: exact_match, max_drop: 0.05}]\n"
        )
    (folder / "suite.yaml").write_text(text)
    return folder / "suite.yaml"


@pytest.fixture
def two_versions(fake_upstream: FakeUpstream) -> Iterator[tuple[FakeDeployment, FakeDeployment]]:
    baseline, candidate = fake_upstream.deployment("gate-v1"), fake_upstream.deployment("gate-v2")
    yield baseline, candidate
    baseline.reset()
    candidate.reset()


def _gate(tmp_path: Path, baseline: FakeDeployment, candidate: FakeDeployment) -> tuple[Engine, object]:
    settings = fake_settings(tmp_path / "home", {"v1": [baseline], "v2": [candidate]})
    plan = plan_gate(
        settings,
        "m",
        candidate=GateSide(2, "fake-chat", provider=candidate.name),
        baseline=GateSide(1, "fake-chat", provider=baseline.name),
    )
    assert (plan.baseline_route, plan.candidate_route) == ("gate:m@v1", "gate:m@v2")
    assert not plan.settings.access.enabled
    gateway = start_gateway(plan.settings)
    try:
        engine = create_store_engine(plan.settings.database_url)
        outcome = asyncio.run(
            run_gate(
                engine, _suite(tmp_path / "suite"), plan, base_url=gateway.url, actor="test", progress=False
            )
        )
    finally:
        gateway.stop()
    return engine, outcome


def test_a_failing_gate_blocks_promotion(
    tmp_path: Path, two_versions: tuple[FakeDeployment, FakeDeployment]
) -> None:
    baseline, candidate = two_versions
    candidate.set_default(Fault(reply="something else"))
    engine, outcome = _gate(tmp_path, baseline, candidate)
    record = outcome.record  # type: ignore[attr-defined]
    assert not record.passed and record.version == 2 and record.baseline_version == 1
    assert record.suite == "unit-release" and record.eval_run_id
    assert "exact_match must not drop" in record.failures()[0]
    # Only the gate's baseline prompt was sent, to both versions.
    assert len(baseline.requests()) == len(candidate.requests()) == len(QUESTIONS)
    assert all(not r.json["messages"][0]["content"].startswith("LOUDLY") for r in candidate.requests())
    run = read_run(engine, record.eval_run_id)
    assert [v.id for v in run.variants] == ["production / gate:m@v1", "production / gate:m@v2"]
    assert run.gate is not None and not run.gate.passed
    assert latest_gate(engine, "m", 2) == record
    with pytest.raises(PermissionDenied, match="failed its gate"):
        promote(engine, route="chat", model="m", version=2, path="x", share=0.1, actor=OPERATOR)
    engine.dispose()


def test_a_passing_gate_allows_promotion(
    tmp_path: Path, two_versions: tuple[FakeDeployment, FakeDeployment]
) -> None:
    baseline, candidate = two_versions
    engine, outcome = _gate(tmp_path, baseline, candidate)
    assert outcome.record.passed  # type: ignore[attr-defined]
    assert [g.passed for g in list_gates(engine, model="m")] == [True]
    deployment = promote(engine, route="chat", model="m", version=2, path="x", share=0.1, actor=OPERATOR)
    assert deployment.gate_id == outcome.record.id  # type: ignore[attr-defined]
    engine.dispose()


def test_the_suite_is_rewritten_to_compare_the_two_routes(tmp_path: Path) -> None:
    suite = model_suite(load_suite(_suite(tmp_path)), "gate:m@v1", "gate:m@v2")
    assert [p.label for p in suite.prompts] == ["production"]
    assert suite.models == ("gate:m@v1", "gate:m@v2")
    assert suite.gate is not None
    assert (suite.gate.baseline, suite.gate.candidate) == ("production / gate:m@v1", "production / gate:m@v2")
    assert suite.source["model_gate"]["candidate"] == "gate:m@v2"
    with pytest.raises(ConfigError, match="gate"):
        model_suite(load_suite(_suite(tmp_path / "nogate", gate=False)), "a", "b")
    settings = fake_settings(tmp_path / "h", {})
    with pytest.raises(ConfigError, match="the candidate is the baseline"):
        plan_gate(settings, "m", candidate=GateSide(1, "a"), baseline=GateSide(1, "a"))
    # Without a configured local provider, the gate brings its own.
    plan = plan_gate(settings, "m", candidate=GateSide(2, "/m/2"), baseline=GateSide(1, "/m/1"))
    assert plan.settings.providers["keel-gate-local"].type == "local"
    assert plan.settings.models["gate:m@v2"].deployments[0].model == "/m/2"


def test_the_shipped_example_suite_gates_two_versions() -> None:
    from keel.evals import prepare

    example = Path(__file__).parents[2] / "examples" / "release" / "suite.yaml"
    prepared = prepare(model_suite(load_suite(example), "gate:keel-demo@v1", "gate:keel-demo@v2"), None)
    assert len(prepared.cases) == 30
    assert prepared.gate_variants == ("plain / gate:keel-demo@v1", "plain / gate:keel-demo@v2")
