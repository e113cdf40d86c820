"""The registry's eval gate: with ``prompts.require_eval_gate``, a protected label moves
only to a version that passed an eval gate. End to end: registry prompts resolved by the
gateway in an eval run, the run's verdict, then the label move it allows (or not)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from keel.core import PermissionDenied, load_settings
from keel.evals import EvalLabelGate, RunStore
from keel.prompts import PromptRegistry
from keel.store import create_store_engine, recent_requests, upgrade
from tests.cli.helpers import keel
from tests.evals.harness import write_config, write_workspace
from tests.fakes import FakeDeployment

QUESTION = {"question": "string"}


def _registry(engine: Engine) -> PromptRegistry:
    return PromptRegistry(engine, gates=[EvalLabelGate(engine)])


def _passing_run(engine: Engine, run_id: str, prompt_version: str, *, passed: bool = True) -> None:
    store = RunStore(engine)
    variants = [
        {"id": "base / m", "prompt": "base", "prompt_version": "caps#1", "model": "m"},
        {"id": "cand / m", "prompt": "cand", "prompt_version": prompt_version, "model": "m"},
    ]
    store.create(run_id, "suite", {"variants": variants, "gate_variants": ["base / m", "cand / m"]})
    store.finish(run_id, "complete", {}, passed)


def test_a_protected_label_moves_only_to_a_version_with_a_passing_gate(engine: Engine) -> None:
    registry = _registry(engine)
    registry.create(
        "caps",
        type="chat",
        template=[{"role": "user", "content": "{{ question }}"}],
        variables=QUESTION,
        actor="t",
    )
    registry.add_version(
        "caps", template=[{"role": "user", "content": "Q: {{ question }}"}], variables=QUESTION, actor="t"
    )
    # Not protected: no gate.
    registry.set_label("caps", "staging", 2, actor="t", admin=False)
    with pytest.raises(PermissionDenied, match=r"caps#2 has not passed an eval gate"):
        registry.set_label("caps", "production", 2, actor="t", admin=True)
    _passing_run(engine, "r-failed", "caps#2", passed=False)
    _passing_run(engine, "r-other", "caps#1")
    with pytest.raises(PermissionDenied):
        registry.set_label("caps", "production", 2, actor="t", admin=True)
    _passing_run(engine, "r-passed", "caps#2")
    assert registry.set_label("caps", "production", 2, actor="t", admin=True).version == 2
    # A suite named for the prompt: only its runs count.
    strict = PromptRegistry(engine, gates=[EvalLabelGate(engine, suites={"caps": "other-suite"})])
    registry.add_version(
        "caps", template=[{"role": "user", "content": "A: {{ question }}"}], variables=QUESTION, actor="t"
    )
    _passing_run(engine, "r-3", "caps#3")
    with pytest.raises(PermissionDenied, match="suite 'other-suite'"):
        strict.set_label("caps", "production", 3, actor="t", admin=True)


def test_an_eval_run_of_registry_prompts_through_the_gateway_unlocks_the_label(
    tmp_path: Path, upstream: FakeDeployment
) -> None:
    config = write_config(tmp_path, upstream)
    config.write_text(config.read_text() + "prompts: {require_eval_gate: true}\n")
    suite = write_workspace(tmp_path / "suite", cases=12)
    suite.write_text(
        suite.read_text()
        .replace(
            "  - {file: plain.yaml, name: baseline}\n  - {file: equivalent.yaml, name: candidate}\n",
            "  - caps@production\n  - caps@staging\n",
        )
        .replace("baseline: baseline", "baseline: caps@production")
        .replace("candidate: candidate", "candidate: caps@staging")
    )
    settings = load_settings(config)
    engine = create_store_engine(settings.database_url)
    upgrade(engine)
    try:
        registry = PromptRegistry(engine)
        registry.create(
            "caps",
            type="chat",
            template=[{"role": "user", "content": "{{ question }}"}],
            variables=QUESTION,
            actor="t",
        )
        registry.set_label("caps", "production", 1, actor="t", admin=True)
        registry.add_version(
            "caps", template=[{"role": "user", "content": "Q: {{ question }}"}], variables=QUESTION, actor="t"
        )
        registry.set_label("caps", "staging", 2, actor="t", admin=True)

        code, out, err = keel("prompts", "label", "caps", "2", "production", "--config", str(config))
        assert code == 1 and "has not passed an eval gate" in err

        report = tmp_path / "run.json"
        code, out, err = keel(
            "eval", "run", str(suite), "--config", str(config), "--quiet", "--json", str(report)
        )
        assert code == 0, out + err
        data = json.loads(report.read_text())
        assert [v["prompt_version"] for v in data["variants"]] == ["caps#1", "caps#2"]
        # The gateway expanded the pinned versions itself: the log names them.
        logged = {(r.prompt_name, r.prompt_version) for r in recent_requests(engine, limit=100)}
        assert logged == {("caps", 1), ("caps", 2)}

        code, out, err = keel("prompts", "label", "caps", "2", "production", "--config", str(config))
        assert code == 0, out + err
        assert registry.get_version("caps", label="production").version == 2
    finally:
        engine.dispose()
