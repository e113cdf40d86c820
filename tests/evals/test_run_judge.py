"""The LLM judge and embedding similarity through the gateway: judge calls are metered
and tagged with the run like the model's, a repeated judge's samples are kept, and the
noise split separates judge noise from generation noise."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from keel.core import load_settings
from keel.store import create_store_engine, recent_requests
from tests.cli.helpers import keel
from tests.evals.harness import write_config, write_workspace
from tests.fakes import FakeDeployment, FakeUpstream, Fault

SCORERS = """
  - name: judged
    llm_judge: {model: judge, rubric: "Does it name the city?", scale: "1-5", repeats: 3}
  - name: close
    embedding_similarity: {model: embed}
"""


def test_a_repeated_judge_through_the_gateway_separates_judge_from_generation_noise(
    tmp_path: Path, upstream: FakeDeployment, fake_upstream: FakeUpstream
) -> None:
    judge = fake_upstream.deployment(f"judge{uuid.uuid4().hex[:8]}")
    # The judge disagrees with itself: 3, 5, 3, 5 ... (what the noise split measures).
    judge.script(*[Fault(reply=json.dumps({"score": 3 + 2 * (i % 2), "reason": "r"})) for i in range(200)])
    config = write_config(tmp_path, upstream, judge=judge)
    suite = write_workspace(tmp_path / "s", cases=6, gate="")
    text = suite.read_text()
    text = text.replace("  - {file: equivalent.yaml, name: candidate}\n", "")
    text = text.replace("concurrency: 8\n", "concurrency: 8\nrepeats: 2\n")
    text = text.replace("scorers:\n", "scorers:" + SCORERS, 1)
    suite.write_text(text)
    report = tmp_path / "r.json"
    code, out, err = keel(
        "eval", "run", str(suite), "--config", str(config), "--quiet", "--json", str(report)
    )
    assert code == 0, out + err
    data = json.loads(report.read_text())
    cells = data["cells"]
    assert len(cells) == 12  # 6 cases x 2 repeats, one variant
    samples = [cell["scores"]["judged"]["samples"] for cell in cells]
    assert all(len(s) == 3 for s in samples)
    # Scale 1-5 normalised to 0..1: 3 -> 0.5, 5 -> 1.0.
    assert {v for s in samples for v in s} == {0.5, 1.0}
    similarities = [cell["scores"]["close"]["value"] for cell in cells]
    assert all(0.0 <= v <= 1.0 for v in similarities) and len(set(similarities)) > 1
    [split] = [n for n in data["noise"]["baseline / echo"] if n["metric"] == "judged"]
    assert split["judge"] > 0.05
    assert split["generation"] is not None and split["generation"] < 0.05
    # The judge's 36 calls and the 12 embedding calls went through the gateway, tagged.
    settings = load_settings(config)
    engine = create_store_engine(settings.database_url)
    try:
        records = recent_requests(engine, limit=500)
    finally:
        engine.dispose()
    by_route: dict[str, int] = {}
    for record in records:
        assert record.extra["tags"]["eval_run"] == data["run_id"]
        by_route[str(record.route)] = by_route.get(str(record.route), 0) + 1
    assert by_route == {"echo": 12, "judge": 36, "embed": 12}
    judge.reset()
