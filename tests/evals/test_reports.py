"""The run's reports: JUnit XML, Markdown, HTML, the terminal and the files, all from one
hand-built ``RunResults`` (``sample_results``)."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from keel.evals._report_common import case_diffs, worst_regressions
from keel.evals._report_files import write_reports
from keel.evals._report_html import html_report
from keel.evals._report_html_cases import word_diff
from keel.evals._report_junit import junit_xml
from keel.evals._report_markdown import markdown_summary, md_text
from keel.evals._report_terminal import render_run_list, render_terminal
from keel.evals._results import GateCheck, GateVerdict, RunResults
from keel.evals._svg import Interval, histogram, interval_chart, nice_ticks
from tests.evals.sample_results import BASELINE, CANDIDATE, MALICIOUS, sample_results


@pytest.fixture
def results() -> RunResults:
    return sample_results()


def _passing(results: RunResults) -> RunResults:
    assert results.gate is not None
    checks = tuple(GateCheck(c.rule, True, c.detail) for c in results.gate.checks)
    return dataclasses.replace(results, gate=GateVerdict(BASELINE, CANDIDATE, checks))


# --- shared derivations --------------------------------------------------------------


def test_regressions_are_cases_that_passed_in_baseline_and_fail_in_candidate(results: RunResults) -> None:
    diffs = case_diffs(results, BASELINE, CANDIDATE)
    assert {d.case.id for d in diffs if d.regressed} == {"c02", "c05", "c07", "c11"}
    assert {d.case.id for d in diffs if d.improved} == {"c09"}
    assert [d.case.id for d in diffs if d.errored] == ["c07"]
    worst = worst_regressions(diffs, 2)
    # Equal on metrics lost: the safety case comes first.
    assert [d.case.id for d in worst] == ["c11", "c07"]


# --- JUnit ---------------------------------------------------------------------------


def test_junit_counts_match_the_testcases(results: RunResults) -> None:
    root = ET.fromstring(junit_xml(results).encode())
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [BASELINE, CANDIDATE, "gate"]
    for suite in suites:
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(cases)
        assert int(suite.get("failures", "-1")) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.get("errors", "-1")) == sum(c.find("error") is not None for c in cases)
    assert int(root.get("tests", "-1")) == 12 * 3 * 2 + 3
    base, cand, gate = suites
    # Baseline fails `correct` on c09 and c10; the candidate on c02, c05, c10, c11, and
    # its call for c07 failed: an error on every metric of that case.
    assert base.get("failures") == "2"
    assert cand.get("failures") == "4"
    assert cand.get("errors") == "3"
    errored = [c.get("name") for c in cand.findall("testcase") if c.find("error") is not None]
    assert errored == ["c07 [correct]", "c07 [rouge]", "c07 [judge]"]
    failure = next(c for c in cand.findall("testcase") if c.get("name") == "c11 [correct]").find("failure")
    assert failure is not None
    assert "does not contain" in (failure.get("message") or "")
    assert gate.get("failures") == "1"
    failed_rule = next(c for c in gate.findall("testcase") if c.find("failure") is not None)
    assert failed_rule.get("name") == "every safety case must pass"
    assert int(root.get("failures", "-1")) == 2 + 4 + 1
    assert root.get("errors") == "3"


def test_junit_survives_control_characters_in_outputs(results: RunResults) -> None:
    cell = next(c for c in results.cells if c.case_id == "c11" and c.variant == CANDIDATE)
    hostile = dataclasses.replace(cell, output=dataclasses.replace(cell.output, text="bad \x00\x1b byte ]]>"))
    results.cells[results.cells.index(cell)] = hostile
    root = ET.fromstring(junit_xml(results).encode())
    text = "".join(root.itertext())
    assert "]]>" in text
    assert "\x00" not in text


# --- Markdown ------------------------------------------------------------------------


def test_markdown_has_verdict_table_power_note_gate_and_regressions(results: RunResults) -> None:
    md = markdown_summary(results)
    assert md.startswith("## ❌ Gate failed: `support-answer` (1 of 3 rules)")
    assert "| Metric | Baseline | Candidate | Effect | 95% CI | p | Test |" in md
    assert re.search(r"^\| correct \(pass/fail\) \| 83\.3% \| 58\.3% \| −25\.0 pts \| \[−", md, re.M)
    assert re.search(r"^\| judge \| 4\.00 \| 3\.12 \| −0\.875 \|", md, re.M)
    assert "with 12 cases this run can detect a drop of ≥ " in md
    assert "(80% power, α = 0.05)" in md
    assert "- ❌ every safety case must pass: c11 failed correct in the candidate" in md
    regressions = md[md.index("### Regressions") :]
    for case_id in ("c02", "c05", "c07", "c11"):
        assert f"`{case_id}`" in regressions
    assert "`c09`" not in regressions  # improved, not regressed
    assert "Cost $" in md
    assert markdown_summary(_passing(results)).startswith("## ✅ Gate passed")


def test_markdown_neutralises_model_output(results: RunResults) -> None:
    md = markdown_summary(results)
    assert "<script>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    # A table cell must not be split by the output's pipe, nor ping a user.
    assert "@octocat" not in md
    assert md_text("a | b *c* @d #1") == "a \\| b \\*c\\* @\u200bd #\u200b1"


# --- HTML ----------------------------------------------------------------------------


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "xlink:href", "data") and value is not None:
                self.urls.append(value)
        if tag == "script":
            self.scripts.append(dict(attrs))


def test_html_is_self_contained_and_escapes_outputs(results: RunResults) -> None:
    page = html_report(results)
    parser = _Collector()
    parser.feed(page)
    assert parser.urls == []  # no src/href at all: nothing to fetch, nothing external
    assert parser.scripts and all("src" not in s for s in parser.scripts)
    assert "<link" not in page
    assert "@import" not in page
    assert not re.search(r"""<[^>]*\s(src|href)\s*=""", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # The hostile output is text, never markup.
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page
    assert parser.tags.count("script") == 1


def test_html_has_one_chart_per_metric_and_the_comparison_plots(results: RunResults) -> None:
    page = html_report(results)
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    charts = [ET.fromstring(svg).get("data-chart") for svg in svgs]  # each one well-formed XML
    assert [c for c in charts if c and c.startswith("estimate:")] == [
        "estimate:correct",
        "estimate:rouge",
        "estimate:judge",
    ]
    assert "forest" in charts
    assert {"histogram:rouge", "histogram:judge"} <= set(charts)
    assert "histogram:correct" not in charts  # pass/fail metrics have no per-case distribution


def test_html_shows_the_regressed_case_side_by_side(results: RunResults) -> None:
    page = html_report(results)
    start = page.index('id="case-c02"')
    article = page[page.rindex("<article", 0, start) : page.index("</article>", start)]
    assert 'class="case regressed"' in article
    assert 'data-regressed="1"' in article and 'data-failed="1"' in article
    assert "<details open>" in article
    assert "regressed: correct" in article
    assert "<del>Refunds within 30 days of purchase</del>" in article
    assert "<ins>Contact sales for any billing question</ins>" in article
    assert "output does not contain" in article  # the candidate's explanation
    assert "−100.0 pts" in article
    unchanged = page[page.index('id="case-c08"') :]
    unchanged = unchanged[: unchanged.index("</article>")]
    assert 'data-regressed="0"' in unchanged and "<del>" not in unchanged and "<ins>" not in unchanged
    assert 'data-mode="regressed"' in page and 'data-mode="failed"' in page
    errored = page[page.index('id="case-c07"') :]
    errored = errored[: errored.index("</article>")]
    assert '<span class="error">[call failed: upstream timed out after 30 s]</span>' in errored
    assert "<ins>" not in errored  # no diff against an error message


def test_word_diff_escapes_and_marks_only_changes() -> None:
    left, right = word_diff("the <b> cat sat", "the <b> dog sat & ran")
    assert left == "the &lt;b&gt; <del>cat</del> sat"
    assert right == "the &lt;b&gt; <ins>dog</ins> sat <ins>&amp; ran</ins>"
    assert word_diff("a\n\nb", "a\nb") == ("a\n\nb", "a\nb")  # whitespace alone is no change
    long = " ".join(f"w{i}" for i in range(3000))
    left, right = word_diff(long, long.replace("w1500 ", "changed "))
    assert left.count("<del>") == 1 and "<del>w1500</del>" in left


def test_single_variant_run_renders_without_comparison(results: RunResults) -> None:
    single = dataclasses.replace(
        results,
        variants=results.variants[:1],
        cells=[c for c in results.cells if c.variant == BASELINE],
        estimates={BASELINE: results.estimates[BASELINE]},
        comparisons=[],
        noise={},
        gate=None,
    )
    page = html_report(single)
    assert page.count('data-chart="estimate:') == 3
    assert "forest" not in page
    md = markdown_summary(single)
    assert md.startswith("## Eval `support-answer`: no gate")
    assert f"| `{BASELINE}` | 83.3% [" in md
    console = Console(record=True, width=160)
    render_terminal(single, console)
    assert "No gate configured." in console.export_text()


# --- SVG -----------------------------------------------------------------------------


def test_svg_helpers_escape_labels_and_cover_the_data() -> None:
    assert nice_ticks(-0.37, 0.12) == [-0.4, -0.2, 0.0, 0.2]
    assert nice_ticks(0.0, 100.0) == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert nice_ticks(1.0, 5.0) == [1.0, 2.0, 3.0, 4.0, 5.0]
    chart = interval_chart(
        [Interval("<b>x</b>", -5.0, -9.0, -1.0, "bad"), Interval("y", 2.0, -1.0, 4.0)],
        title="t & u",
        chart="forest",
        zero_line=True,
    )
    root = ET.fromstring(chart)
    assert "<b>" not in chart and "&lt;b&gt;x&lt;/b&gt;" in chart
    assert len(root.findall("{http://www.w3.org/2000/svg}g")) == 2
    bars = ET.fromstring(histogram([-2, -1, 0, 0, 0, 1], title="h", chart="h"))
    rects = bars.findall("{http://www.w3.org/2000/svg}rect")
    counts = sorted(int(r.findtext("{http://www.w3.org/2000/svg}title", "").split()[0]) for r in rects)
    assert sum(counts) == 6 and max(counts) == 3  # the three zeros share one (neutral) bar


# --- terminal ------------------------------------------------------------------------


def test_terminal_shows_tables_power_note_and_failed_gate(results: RunResults) -> None:
    console = Console(record=True, width=160)
    render_terminal(results, console)
    text = console.export_text()
    assert "83.3% [" in text and "58.3% [" in text
    assert "−25.0 pts" in text and "mcnemar" in text and "4 / 1" in text
    assert "correct: with 12 cases this run can detect a drop of ≥" in text
    assert "Gate FAILED" in text
    assert "✗ every safety case must pass — c11 failed correct in the candidate" in text
    assert "✓ correct must not drop by more than 0.02 (p < 0.05)" in text
    assert "1 failed" in text and "status complete" in text


def test_terminal_does_not_interpret_markup_in_names(results: RunResults) -> None:
    results.suite = "[red]suite[/red]"
    console = Console(record=True, width=160)
    render_terminal(results, console)
    assert "[red]suite[/red]" in console.export_text()


def test_run_list(results: RunResults) -> None:
    console = Console(record=True, width=160)
    rows = [
        {
            "run_id": "ev_1",
            "suite": "support-answer",
            "created_at": "2026-11-25T14:03:07+00:00",
            "status": "complete",
            "cost_usd": 0.0123,
            "n_cases": 12,
            "gate": False,
            "variants": [v.to_json() for v in results.variants],
        },
        {
            "run_id": "ev_2",
            "suite": "other",
            "created_at": results.created_at,
            "status": "stopped",
            "cost_usd": 2.5,
            "n_cases": 3,
            "gate": "passed",
            "variants": ["a / demo"],
        },
    ]
    render_run_list(rows, console)
    text = console.export_text()
    assert "ev_1" in text and "failed" in text and "2026-11-25 14:03" in text and "$0.0123" in text
    assert "ev_2" in text and "stopped" in text and "$2.50" in text and BASELINE in text
    assert "passed" in text
    empty = Console(record=True, width=80)
    render_run_list([], empty)
    assert "No eval runs yet." in empty.export_text()


# --- files ---------------------------------------------------------------------------


def test_write_reports_writes_every_format(results: RunResults, tmp_path: Path) -> None:
    paths = write_reports(
        results,
        json_path=tmp_path / "out" / "results.json",
        junit_path=tmp_path / "junit" / "eval.xml",
        markdown_path=tmp_path / "summary.md",
        html_path=str(tmp_path / "deep" / "er" / "report.html"),
    )
    assert [p.name for p in paths] == ["results.json", "eval.xml", "summary.md", "report.html"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    data = orjson.loads(paths[0].read_bytes())
    assert data["run_id"] == results.run_id and len(data["cells"]) == len(results.cells)
    assert data["gate"]["passed"] is False
    assert paths[0].read_text().startswith('{\n  "run_id"')  # indented
    assert any(c["output"]["text"] == MALICIOUS for c in data["cells"])
    ET.parse(paths[1])
    assert paths[2].read_text().startswith("## ❌")
    assert paths[3].read_text().startswith("<!DOCTYPE html>")
    assert write_reports(results) == []
