"""Bad input to ``keel eval run``: each gets a one-line error that names the file, line,
case or setting, exit code 1, and no run is stored."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import keel
from tests.evals.harness import write_config, write_workspace
from tests.fakes import FakeDeployment


def run(config: Path, suite: Path, *args: str) -> tuple[int, str]:
    code, out, err = keel("eval", "run", str(suite), "--config", str(config), "--quiet", *args)
    return code, out + err


def no_runs(config: Path) -> bool:
    code, out, _ = keel("eval", "list", "--config", str(config), "--json")
    return code == 0 and json.loads(out) == []


def test_an_unknown_scorer_is_named_with_its_location(tmp_path: Path, upstream: FakeDeployment) -> None:
    config = write_config(tmp_path, upstream)
    suite = write_workspace(tmp_path / "s", extra="")
    suite.write_text(suite.read_text().replace("contains: {}", "containz: {}"))
    code, output = run(config, suite)
    assert code == 1
    assert "scorers[0]" in output and "containz" in output
    assert no_runs(config)


def test_a_row_missing_a_template_variable_names_the_case_and_line(
    tmp_path: Path, upstream: FakeDeployment
) -> None:
    config = write_config(tmp_path, upstream)
    suite = write_workspace(tmp_path / "s", cases=5)
    dataset = suite.parent / "cases.jsonl"
    lines = dataset.read_text().splitlines()
    lines[3] = json.dumps({"id": "broken", "expected": "Rome"})
    dataset.write_text("\n".join(lines) + "\n")
    code, output = run(config, suite)
    assert code == 1
    assert "case 'broken' (cases.jsonl:4)" in output
    assert "question" in output
    assert no_runs(config)
    assert upstream.requests() == []


def test_invalid_json_in_the_dataset_names_the_line(tmp_path: Path, upstream: FakeDeployment) -> None:
    config = write_config(tmp_path, upstream)
    suite = write_workspace(tmp_path / "s", cases=5)
    dataset = suite.parent / "cases.jsonl"
    dataset.write_text(dataset.read_text() + "{not json\n")
    code, output = run(config, suite)
    assert code == 1
    assert "cases.jsonl:6: invalid JSON" in output


def test_an_unknown_model_is_a_clear_error(tmp_path: Path, upstream: FakeDeployment) -> None:
    config = write_config(tmp_path, upstream)
    suite = write_workspace(tmp_path / "s", cases=3)
    suite.write_text(suite.read_text().replace("models: [echo]", "models: [nope]"))
    code, output = run(config, suite)
    assert code == 1
    assert "nope" in output
    assert output.count("\n") <= 3


def test_an_unreachable_gateway_is_a_clear_error(tmp_path: Path, upstream: FakeDeployment) -> None:
    config = write_config(tmp_path, upstream)
    suite = write_workspace(tmp_path / "s", cases=3)
    code, output = run(config, suite, "--gateway", "http://127.0.0.1:9", "--api-key", "sk-x")
    assert code == 1
    assert "cannot reach the gateway at http://127.0.0.1:9/v1" in output


def test_suite_problems_are_all_reported_with_locations(tmp_path: Path, upstream: FakeDeployment) -> None:
    config = write_config(tmp_path, upstream)
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: x\ndataset: missing.jsonl\nrepeats: 0\nscorers: [contains]\n")
    code, output = run(config, suite)
    assert code == 1
    assert "repeats" in output
    suite.write_text("name: x\ndataset: missing.jsonl\nscorers: [contains]\n")
    code, output = run(config, suite)
    assert code == 1
    assert "dataset.path" in output and "missing.jsonl" in output
    code, output = run(config, tmp_path / "absent.yaml")
    assert code == 1 and "absent.yaml" in output


def test_a_row_missing_what_a_scorer_needs_names_the_case_before_any_call(
    tmp_path: Path, upstream: FakeDeployment
) -> None:
    config = write_config(tmp_path, upstream)
    suite = write_workspace(tmp_path / "s", cases=5)
    dataset = suite.parent / "cases.jsonl"
    lines = dataset.read_text().splitlines()
    lines[2] = json.dumps({"id": "unlabelled", "question": "The answer is Rome. Which city is it?"})
    dataset.write_text("\n".join(lines) + "\n")
    code, output = run(config, suite)
    assert code == 1
    assert "case 'unlabelled' (line 3) has no 'expected'" in output
    assert upstream.requests() == []
    assert no_runs(config)
