"""Writing the reports a run asked for to files (``keel eval run --json/--junit/
--markdown/--html``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson

from keel.evals._report_html import html_report
from keel.evals._report_junit import junit_xml
from keel.evals._report_markdown import markdown_summary
from keel.evals._results import RunResults


def results_json(results: RunResults) -> bytes:
    """The JSON output: ``RunResults.to_json`` indented, non-string keys allowed (a
    case's ``expected`` may be any JSON a YAML file gave)."""
    return orjson.dumps(
        results.to_json(),
        default=str,
        option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE,
    )


def write_reports(
    results: RunResults,
    *,
    json_path: Path | str | None = None,
    junit_path: Path | str | None = None,
    markdown_path: Path | str | None = None,
    html_path: Path | str | None = None,
) -> list[Path]:
    """Write each report whose path is given (creating parent folders) and return the
    paths written, in the order JSON, JUnit, Markdown, HTML."""
    written: list[Path] = []
    renderers: tuple[tuple[Path | str | None, Callable[[], bytes]], ...] = (
        (json_path, lambda: results_json(results)),
        (junit_path, lambda: junit_xml(results).encode()),
        (markdown_path, lambda: markdown_summary(results).encode()),
        (html_path, lambda: html_report(results).encode()),
    )
    for target, render in renderers:
        if target is None:
            continue
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render())
        written.append(path)
    return written
