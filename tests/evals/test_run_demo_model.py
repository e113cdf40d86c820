"""The repository's sample suite (examples/evals/demo) on the embedded demo model, as
the README runs it: an equivalent prompt passes the gate (exit 0), a deliberately worse
one fails it (exit 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import keel

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SUITE = Path(__file__).resolve().parents[2] / "examples" / "evals" / "demo" / "suite.yaml"


def test_the_demo_suite_passes_an_equivalent_prompt_and_catches_a_worse_one(
    demo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEEL_CONFIG", raising=False)
    monkeypatch.setenv("KEEL_HOME", str(demo_home))
    monkeypatch.setenv("KEEL_DATABASE_URL", f"sqlite:///{tmp_path / 'keel.db'}")
    report = tmp_path / "equivalent.json"
    code, out, err = keel("eval", "run", str(SUITE), "--quiet", "--json", str(report))
    assert code == 0, out + err
    data = json.loads(report.read_text())
    assert data["gate"]["passed"] is True
    baseline = data["estimates"]["baseline / keel-demo"]["answer_match"]["mean"]
    # The demo model answers its FAQ recognisably.
    assert baseline >= 0.9

    worse = SUITE.parent / "prompts" / "worse.yaml"
    report = tmp_path / "worse.json"
    code, out, err = keel(
        "eval", "run", str(SUITE), "--quiet", "--candidate", f"file:{worse}", "--json", str(report)
    )
    assert code == 3, out + err
    data = json.loads(report.read_text())
    assert data["gate"]["passed"] is False
    drop = data["comparisons"][0]["metrics"][0]
    assert drop["metric"] == "answer_match"
    assert drop["effect"] < -0.3 and drop["p_value"] < 0.01
    # The baseline's 30 answers came from the eval cache the first run filled.
    cached = [c for c in data["cells"] if c["variant"] == "baseline / keel-demo" and c["output"]["cached"]]
    assert len(cached) == 30
