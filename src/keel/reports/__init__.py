"""Cost and governance reports: per team and month, spend against budgets, spend by model
and day, models used, top keys, cache savings, guard incidents and eval gate results, as
one self-contained HTML document (inline CSS and SVG, print-friendly), and as PDF or PNG
charts through headless Chromium.

``build_cost_report`` gathers the figures, ``render_html`` makes the document,
``write_cost_report`` does both and writes the files; ``report_team`` says which team a
caller of the admin API may report on.
"""

from keel.reports._chromium import find_chromium, print_pdf, screenshot
from keel.reports._collect import NO_TEAM, build_cost_report
from keel.reports._html import render_html, report_charts
from keel.reports._month import Month, parse_month
from keel.reports._scope import report_team
from keel.reports._types import (
    BudgetLine,
    CostReport,
    EvalRun,
    GuardExample,
    GuardIncidents,
    KeySpend,
    ModelSpend,
    TeamReport,
)
from keel.reports._write import WrittenReport, write_cost_report

__all__ = [
    "NO_TEAM",
    "BudgetLine",
    "CostReport",
    "EvalRun",
    "GuardExample",
    "GuardIncidents",
    "KeySpend",
    "ModelSpend",
    "Month",
    "TeamReport",
    "WrittenReport",
    "build_cost_report",
    "find_chromium",
    "parse_month",
    "print_pdf",
    "render_html",
    "report_charts",
    "report_team",
    "screenshot",
    "write_cost_report",
]
