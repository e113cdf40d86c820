"""Writing a report to disk: the HTML document, and on request its PDF and a PNG of each
chart, both by headless Chromium."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from keel.reports._chromium import find_chromium, print_pdf, screenshot
from keel.reports._collect import build_cost_report
from keel.reports._html import render_html, report_charts
from keel.reports._month import Month, parse_month
from keel.reports._types import CostReport

_SVG_SIZE = re.compile(r'<svg[^>]*?\bwidth="([\d.]+)"[^>]*?\bheight="([\d.]+)"')


@dataclass(frozen=True, slots=True)
class WrittenReport:
    report: CostReport
    html: Path
    pdf: Path | None = None
    pngs: tuple[Path, ...] = ()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "team"


def write_cost_report(
    engine: Engine,
    month: Month | str,
    out_dir: Path,
    *,
    team_id: str | None = None,
    pdf: bool = False,
    png: bool = False,
    chromium: str | Path | None = None,
    now: datetime | None = None,
) -> WrittenReport:
    """Build the report of ``month`` (all teams, or ``team_id``) and write
    ``keel-cost-YYYY-MM[-team].html`` into ``out_dir``; with ``pdf`` the same name in
    ``.pdf``, with ``png`` one ``...-<chart>.png`` per chart. Chromium is looked for
    before anything is written, so a missing browser fails fast."""
    month = parse_month(month) if isinstance(month, str) else month
    browser = find_chromium(chromium) if pdf or png else None
    report = build_cost_report(engine, month, team_id=team_id, now=now)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"keel-cost-{month}" + (f"-{_slug(report.teams[0].name)}" if team_id is not None else "")
    html = out_dir / f"{stem}.html"
    html.write_text(render_html(report), encoding="utf-8")
    pdf_path = print_pdf(html, out_dir / f"{stem}.pdf", chromium=browser) if pdf else None
    pngs: list[Path] = []
    if png:
        with tempfile.TemporaryDirectory(prefix="keel-report-") as scratch:
            for name, svg in report_charts(report):
                match = _SVG_SIZE.search(svg)
                width, height = (round(float(match[1])), round(float(match[2]))) if match else (720, 240)
                page = Path(scratch) / f"{_slug(name)}.html"
                page.write_text(
                    '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
                    f'<body style="margin:0;background:#fff">{svg}</body></html>',
                    encoding="utf-8",
                )
                target = out_dir / f"{stem}-{_slug(name)}.png"
                pngs.append(screenshot(page, target, width=width, height=height, chromium=browser))
    return WrittenReport(report, html, pdf_path, tuple(pngs))
