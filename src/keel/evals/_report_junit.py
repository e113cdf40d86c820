"""JUnit XML, the format every CI system shows as a test report.

One ``testsuite`` per variant with one ``testcase`` per case × metric, and a last
``testsuite`` named ``gate`` with one ``testcase`` per gate rule, so that a CI page
lists the failing gate rules next to the cases that failed. A case whose call failed is
an ``error`` (the harness could not judge it); a pass/fail metric that failed is a
``failure``; a graded metric without a threshold always passes and carries its score as
a property. Repeats of a case fold into its one testcase (it fails when at least half
of them fail, the same rule as the other reports), so the number of tests does not
depend on the repeat count.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from keel.evals._report_common import case_passed, cell_passed, cells_by_case
from keel.evals._results import Cell, Metric, RunResults

# XML 1.0 cannot carry most control characters, even escaped; a model output can.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MAX_TEXT = 4000


def _clean(text: str, limit: int = _MAX_TEXT) -> str:
    text = _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def junit_xml(results: RunResults) -> str:
    """The run as a JUnit XML document (UTF-8 text with an XML declaration)."""
    root = ET.Element("testsuites", name=_clean(f"keel eval {results.suite}"))
    grouped = cells_by_case(results)
    for variant in results.variants:
        suite = ET.SubElement(
            root,
            "testsuite",
            name=_clean(variant.id),
            timestamp=results.created_at.isoformat(),
        )
        props = ET.SubElement(suite, "properties")
        for name, value in (
            ("keel.run_id", results.run_id),
            ("keel.suite", results.suite),
            ("prompt_version", variant.prompt_version),
            ("model", variant.model),
        ):
            ET.SubElement(props, "property", name=name, value=_clean(value))
        for case in results.cases:
            cells = grouped.get((case.id, variant.id), [])
            if not cells:
                continue
            for metric in results.metrics:
                _testcase(
                    suite, f"{results.suite}.{variant.id}", case.id, metric, cells, len(results.metrics)
                )
        _count(suite)
    if results.gate is not None:
        suite = ET.SubElement(root, "testsuite", name="gate", timestamp=results.created_at.isoformat())
        for check in results.gate.checks:
            testcase = ET.SubElement(
                suite,
                "testcase",
                classname=_clean(f"{results.suite}.gate"),
                name=_clean(check.rule),
                time="0",
            )
            if not check.passed:
                failure = ET.SubElement(testcase, "failure", message=_clean(check.detail, 500), type="gate")
                failure.text = _clean(check.detail)
            else:
                ET.SubElement(testcase, "system-out").text = _clean(check.detail)
        _count(suite)
    _count(root, children="testsuite")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _testcase(
    suite: ET.Element, classname: str, case_id: str, metric: Metric, cells: list[Cell], n_metrics: int
) -> None:
    # The calls' latency shared among the case's metrics, so a suite's time adds up to
    # the time its calls took rather than that many times over.
    seconds = sum(c.output.latency_ms for c in cells) / 1000 / n_metrics
    testcase = ET.SubElement(
        suite,
        "testcase",
        classname=_clean(classname),
        name=_clean(f"{case_id} [{metric.name}]"),
        time=f"{seconds:.3f}",
    )
    errored = [c for c in cells if c.output.error]
    scored = [c for c in cells if metric.name in c.scores]
    if errored and len(errored) * 2 >= len(cells):
        error = ET.SubElement(
            testcase, "error", message=_clean(errored[0].output.error or "", 500), type="call_failed"
        )
        error.text = _clean("\n".join(f"repeat {c.repeat}: {c.output.error}" for c in errored))
    elif case_passed(cells, metric) is False:
        failed = [c for c in scored if cell_passed(c, metric) is False]
        first = failed[0].scores[metric.name].explanation if failed else ""
        failure = ET.SubElement(testcase, "failure", message=_clean(first, 500), type=metric.kind)
        failure.text = _clean(
            "\n".join(
                f"repeat {c.repeat}: {c.scores[metric.name].value:g} — {c.scores[metric.name].explanation}"
                f"\noutput: {c.output.text}"
                for c in failed
            )
        )
    if scored:
        props = ET.SubElement(testcase, "properties")
        value = sum(c.scores[metric.name].value for c in scored) / len(scored)
        ET.SubElement(props, "property", name="score", value=f"{value:g}")
        if len(scored) > 1:
            ET.SubElement(props, "property", name="repeats", value=str(len(scored)))
        # Schema order puts properties first; ElementTree appends, so move it there.
        testcase.remove(props)
        testcase.insert(0, props)
        if all(c.scores[metric.name].passed is None for c in scored) and not metric.binary:
            ET.SubElement(testcase, "system-out").text = _clean(
                "\n".join(f"repeat {c.repeat}: {c.scores[metric.name].explanation}" for c in scored)
            )


def _count(element: ET.Element, children: str = "testcase") -> None:
    """Set tests/failures/errors/skipped/time from what is inside, so they cannot drift."""
    if children == "testcase":
        cases = element.findall("testcase")
        tests = len(cases)
        failures = sum(1 for c in cases if c.find("failure") is not None)
        errors = sum(1 for c in cases if c.find("error") is not None)
        seconds = sum(float(c.get("time", "0")) for c in cases)
    else:
        suites = element.findall(children)
        tests = sum(int(s.get("tests", "0")) for s in suites)
        failures = sum(int(s.get("failures", "0")) for s in suites)
        errors = sum(int(s.get("errors", "0")) for s in suites)
        seconds = sum(float(s.get("time", "0")) for s in suites)
    element.set("tests", str(tests))
    element.set("failures", str(failures))
    element.set("errors", str(errors))
    element.set("skipped", "0")
    element.set("time", f"{seconds:.3f}")
