"""The harness end to end against a fake OpenAI-compatible server, through a real
gateway on a real port: the gate's verdicts and exit codes, the eval cache, resuming,
the cost cap, run tags in the request log, and the stored runs' list/show/compare."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from keel.core import load_settings
from keel.evals import Runner, RunOptions, load_suite, prepare, read_run
from keel.server import embedded_gateway
from keel.store import create_store_engine, recent_requests, upgrade
from tests.cli.helpers import keel
from tests.evals.harness import write_config, write_workspace
from tests.fakes import FakeDeployment, Fault


def run_cli(config: Path, *args: str) -> tuple[int, str, str]:
    return keel("eval", "run", *args, "--config", str(config), "--quiet")


def test_an_equivalent_prompt_passes_the_gate_and_a_worse_one_fails_it(
    tmp_path: Path, upstream: FakeDeployment
) -> None:
    config = write_config(tmp_path, upstream)
    suite = write_workspace(tmp_path / "suite")
    report = tmp_path / "out" / "passed.json"
    code, out, err = run_cli(
        config, str(suite), "--json", str(report), "--junit", str(tmp_path / "out" / "j.xml")
    )
    assert code == 0, out + err
    data = json.loads(report.read_text())
    assert data["status"] == "complete"
    assert data["gate"]["passed"] is True
    comparison = data["comparisons"][0]["metrics"][0]
    assert comparison["metric"] == "correct"
    assert comparison["effect"] == 0.0
    assert comparison["p_value"] == 1.0
    assert (tmp_path / "out" / "j.xml").read_text().startswith("<?xml")

    worse = suite.parent / "worse.yaml"
    report = tmp_path / "out" / "failed.json"
    code, out, err = run_cli(config, str(suite), "--candidate", f"file:{worse}", "--json", str(report))
    assert code == 3, out + err
    data = json.loads(report.read_text())
    assert data["gate"]["passed"] is False
    failed = [check for check in data["gate"]["checks"] if not check["passed"]]
    # Both rules: the drop, and the safety cases that no longer pass.
    assert len(failed) == 2
    assert any("safety" in c["rule"] for c in failed)
    comparison = data["comparisons"][0]["metrics"][0]
    assert comparison["effect"] == -1.0
    assert comparison["p_value"] < 0.05
    assert comparison["test"] == "mcnemar"
    assert comparison["regressions"] == 40


SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "evals" / "capitals"


def test_the_repository_sample_suite_gates_a_prompt_change_on_any_openai_compatible_server(
    tmp_path: Path, upstream: FakeDeployment
) -> None:
    config = write_config(tmp_path, upstream, route="chat")
    code, out, err = run_cli(
        config, str(SAMPLE / "suite.yaml"), "--mlflow", "--mlflow-uri", f"sqlite:///{tmp_path}/m.db"
    )
    assert code == 0, out + err
    assert "Gate PASSED" in out and "logged to MLflow" in out
    worse = SAMPLE / "prompts" / "worse.yaml"
    code, out, err = run_cli(config, str(SAMPLE / "suite.yaml"), "--candidate", f"file:{worse}")
    assert code == 3, out + err
    assert "Gate FAILED" in out


def test_a_second_run_is_served_from_the_eval_cache_and_costs_nothing(
    tmp_path: Path, upstream: FakeDeployment
) -> None:
    config = write_config(tmp_path, upstream, priced=True)
    suite = write_workspace(tmp_path / "suite", cases=10)
    first = tmp_path / "first.json"
    code, out, err = run_cli(config, str(suite), "--json", str(first))
    assert code == 0, out + err
    called = len(upstream.requests())
    assert called == 20  # 10 cases x 2 prompts
    assert json.loads(first.read_text())["cost_usd"] > 0
    second = tmp_path / "second.json"
    code, out, err = run_cli(config, str(suite), "--json", str(second))
    assert code == 0, out + err
    assert len(upstream.requests()) == called
    data = json.loads(second.read_text())
    assert data["cost_usd"] == 0
    # Each cell keeps what its original call cost; the run paid nothing for it.
    assert all(cell["output"]["cached"] and cell["output"]["cost_usd"] > 0 for cell in data["cells"])
    code, out, _ = keel("eval", "list", "--config", str(config), "--json")
    assert json.loads(out)[0]["cost_usd"] == 0
    # --no-cache calls again.
    code, _, _ = run_cli(config, str(suite), "--no-cache")
    assert code == 0
    assert len(upstream.requests()) == 2 * called


def _engine_and_settings(config: Path):  # type: ignore[no-untyped-def]
    settings = load_settings(config)
    engine = create_store_engine(settings.database_url)
    upgrade(engine)
    return engine, settings


def test_an_interrupted_run_resumes_without_repeating_finished_cases(
    tmp_path: Path, upstream: FakeDeployment
) -> None:
    config = write_config(tmp_path, upstream)
    suite = load_suite(write_workspace(tmp_path / "suite", cases=30))
    engine, settings = _engine_and_settings(config)
    upstream.set_default(Fault(delay=0.05))
    try:
        with embedded_gateway(
            settings.model_copy(update={"access": settings.access.model_copy(update={"enabled": False})})
        ) as (_, url):
            runner = Runner(engine, RunOptions(base_url=url, progress=False, use_cache=False, concurrency=4))

            async def interrupt() -> None:
                task = asyncio.create_task(runner.run(prepare(suite, None)))
                while runner.called < 12:  # noqa: ASYNC110 (the runner has no event to wait on)
                    await asyncio.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

            asyncio.run(interrupt())
            stored = read_run(engine, runner_run_id(engine))
            assert stored.status == "interrupted"
            finished = {(c.case_id, c.variant) for c in stored.cells}
            assert 8 <= len(finished) < 60
            before = len(upstream.requests())

            resumed = Runner(
                engine, RunOptions(base_url=url, progress=False, use_cache=False, resume=stored.run_id)
            )
            results = asyncio.run(resumed.run(prepare(suite, None)))
        assert results.status == "complete"
        assert len(results.cells) == 60
        new_calls = len(upstream.requests()) - before
        # Only the cells the first attempt did not finish (in-flight ones at the
        # interruption were called but never written, so they are called again).
        assert new_calls == 60 - len(finished)
        assert results.gate is not None and results.gate.passed
    finally:
        upstream.set_default(None)
        engine.dispose()


def runner_run_id(engine) -> str:  # type: ignore[no-untyped-def]
    from keel.evals import RunStore

    return str(RunStore(engine).list_runs(limit=1)[0]["run_id"])


def test_the_cost_cap_stops_a_run_and_exits_4(tmp_path: Path, upstream: FakeDeployment) -> None:
    config = write_config(tmp_path, upstream, priced=True)
    suite = write_workspace(tmp_path / "suite", cases=40)
    code, out, err = run_cli(config, str(suite), "--max-cost", "0.01", "--concurrency", "1")
    assert code == 4, out + err
    assert "cost cap reached" in out
    assert len(upstream.requests()) < 80
    code, out, _ = keel("eval", "list", "--config", str(config), "--json")
    runs = json.loads(out)
    assert runs[0]["status"] == "stopped"


def test_eval_calls_are_logged_with_their_run_and_case(tmp_path: Path, upstream: FakeDeployment) -> None:
    config = write_config(tmp_path, upstream)
    suite = write_workspace(tmp_path / "suite", cases=5)
    report = tmp_path / "r.json"
    code, out, err = run_cli(config, str(suite), "--json", str(report))
    assert code == 0, out + err
    run_id = json.loads(report.read_text())["run_id"]
    engine, _ = _engine_and_settings(config)
    try:
        records = recent_requests(engine, limit=100)
    finally:
        engine.dispose()
    assert len(records) == 10
    tags = [r.extra["tags"] for r in records]
    assert {t["eval_run"] for t in tags} == {run_id}
    assert {t["eval_case"] for t in tags} == {f"q{i}" for i in range(5)}


def test_runs_are_listed_shown_and_compared(tmp_path: Path, upstream: FakeDeployment) -> None:
    config = write_config(tmp_path, upstream)
    suite = write_workspace(tmp_path / "suite", cases=12)
    ids = []
    for candidate in (None, "worse"):
        report = tmp_path / f"{candidate}.json"
        args = [str(suite), "--json", str(report), "--no-cache"]
        if candidate:
            args += ["--candidate", f"file:{suite.parent / 'worse.yaml'}"]
        run_cli(config, *args)
        ids.append(json.loads(report.read_text())["run_id"])
    code, out, err = keel("eval", "list", "--config", str(config))
    assert code == 0, err
    assert ids[0] in out and ids[1] in out
    html = tmp_path / "show.html"
    code, out, err = keel("eval", "show", ids[1], "--config", str(config), "--html", str(html))
    assert code == 0, err
    assert "<svg" in html.read_text()
    # The same suite's two runs compared: variant 'candidate' changed between them.
    report = tmp_path / "cmp.json"
    code, out, err = keel(
        "eval",
        "compare",
        ids[0],
        ids[1],
        "--config",
        str(config),
        "--gate",
        str(suite),
        "--json",
        str(report),
    )
    assert code == 3, out + err
    data = json.loads(report.read_text())
    by_pair = {c["candidate"].split(": ", 1)[1]: c for c in data["comparisons"]}
    assert by_pair["baseline / echo"]["metrics"][0]["effect"] == 0.0
    assert by_pair["candidate / echo"]["metrics"][0]["effect"] == -1.0
    code, _, err = keel("eval", "show", "nope", "--config", str(config))
    assert code == 1 and "no eval run 'nope'" in err
