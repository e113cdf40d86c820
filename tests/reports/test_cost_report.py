"""The cost and governance report's figures, its HTML, and who may ask for which team."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from keel.access import Principal
from keel.core import InvalidRequest, PermissionDenied
from keel.reports import NO_TEAM, build_cost_report, parse_month, render_html, report_team
from tests.reports.conftest import SECRET_EMAIL, USD, Seeded

NOVEMBER = parse_month("2026-11")
AFTER = datetime(2026, 12, 2, tzinfo=UTC)


def test_spend_budgets_models_and_keys_per_team(engine: Engine, seeded: Seeded) -> None:
    report = build_cost_report(engine, NOVEMBER, now=AFTER)
    assert [t.name for t in report.teams] == ["alpha", "beta", "gamma", NO_TEAM]
    alpha, beta, gamma, none = report.teams
    # October's $100 and December's $100 are left out.
    assert alpha.cost_nanos == 6 * USD + USD // 2
    assert beta.cost_nanos == 10 * USD
    assert none.cost_nanos == USD and gamma.cost_nanos == 0 and gamma.requests == 0
    assert report.cost_nanos == 17 * USD + USD // 2
    assert (alpha.requests, alpha.errors) == (6, 1)
    assert (alpha.cache_hits, alpha.saved_nanos) == (1, USD)
    assert alpha.top_model == "gpt-4o" and beta.top_model == "claude-3-5-sonnet"
    assert [(m.model, m.requests, m.cost_nanos) for m in alpha.models] == [
        ("gpt-4o", 5, 6 * USD),
        ("mini", 1, USD // 2),
    ]
    assert alpha.daily["gpt-4o"][:4] == (2 * USD, 4 * USD, 0, 0) and sum(alpha.daily["gpt-4o"]) == 6 * USD
    assert len(alpha.daily["gpt-4o"]) == 30
    assert [(k.key_id, k.name, k.cost_nanos) for k in alpha.keys] == [
        (seeded.alpha_key, "alpha-app", 6_500_000_000)
    ]

    month = alpha.month_budget
    assert month is not None and month.fraction == pytest.approx(0.65)
    assert (month.limit_nanos, month.peak_spent_nanos, month.over_windows) == (10 * USD, 6_500_000_000, 0)
    day = next(b for b in alpha.budgets if b.period == "day")
    # The 2nd spent $4 against a $3 day budget: the peak, and the one day over.
    assert (day.peak_label, day.peak_spent_nanos, day.windows, day.over_windows) == (
        "2026-11-02",
        4 * USD,
        30,
        1,
    )
    assert beta.month_budget is not None and beta.month_budget.fraction == pytest.approx(1.25)
    assert gamma.budgets == () and gamma.month_budget is None
    # The model budget belongs to no team: the organisation's.
    assert [(b.scope, b.scope_id, b.peak_spent_nanos) for b in report.org_budgets] == [
        ("model", "gpt-4o", 6 * USD)
    ]
    assert report.complete


def test_guard_incidents_and_eval_gates(engine: Engine, seeded: Seeded) -> None:
    report = build_cost_report(engine, NOVEMBER, now=AFTER)
    alpha, beta = report.team(seeded.alpha), report.team(seeded.beta)
    # Requests 1-3 were screened; 2 (block) and 3 (flag) are incidents; October's block is not.
    assert (alpha.guards.screened, alpha.guards.incidents) == (3, 2)
    assert alpha.guards.by_decision == {"block": 1, "flag": 1}
    assert alpha.guards.by_policy == {"strict": 2}
    assert alpha.guards.by_scanner == {"pii": 1, "toxicity": 1}
    assert alpha.guards.by_stage == {"input": 1, "output": 1}
    first = alpha.guards.examples[0]  # the block comes before the flag
    assert (first.request_id, first.decision, first.policy, first.stage) == (
        "req-0002",
        "block",
        "strict",
        "input",
    )
    assert first.reasons == ("pii: EMAIL",)
    assert beta.guards.by_decision == {"redact": 1} and beta.guards.by_policy == {"lenient": 1}

    assert [(r.id, r.gate_passed) for r in report.evals] == [
        ("run-gate-failed", False),
        ("run-gate-passed", True),
    ]
    assert [r.id for r in alpha.evals] == ["run-gate-failed"]
    assert beta.evals == ()


def test_one_team_only(engine: Engine, seeded: Seeded) -> None:
    report = build_cost_report(engine, NOVEMBER, team_id=seeded.beta, now=AFTER)
    assert [t.team_id for t in report.teams] == [seeded.beta]
    assert report.org_budgets == () and report.evals == ()
    html = render_html(report)
    assert "beta" in html and "alpha" not in html and "alpha-app" not in html
    assert "Summary" not in html


def _charts(html: str) -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in re.findall(r"<svg\b.*?</svg>", html, flags=re.S)]


def test_html_is_self_contained_with_charts_and_no_found_values(engine: Engine, seeded: Seeded) -> None:
    report = build_cost_report(engine, NOVEMBER, now=datetime(2026, 11, 20, tzinfo=UTC))
    html = render_html(report)
    assert html.startswith("<!DOCTYPE html>")
    lowered = html.lower()
    assert "<script" not in lowered and "<link" not in lowered and "src=" not in lowered
    assert "http://" not in lowered.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in lowered
    assert "@page" in html and "break-before: page" in html  # print-friendly
    assert "The month is not over" in html
    # Guard examples name scanners and reasons, never the body or what was found.
    assert SECRET_EMAIL not in html and "req-0002" in html and "pii: EMAIL" in html
    charts = _charts(html)
    kinds = [c.attrib["data-chart"] for c in charts]
    assert kinds == ["bar", "stacked", "stacked", "stacked", "stacked"]  # summary + four teams
    team_bars = charts[0]
    values = sorted(float(e.attrib["data-value"]) for e in team_bars.iter() if "data-value" in e.attrib)
    assert values == [0.0, 1.0, 6.5, 10.0]
    alpha_chart = charts[1]
    # alpha spent on gpt-4o on two days and on mini on one: three bars.
    points = [e for e in alpha_chart.iter() if "data-value" in e.attrib]
    assert sorted(float(p.attrib["data-value"]) for p in points) == [0.5, 2.0, 4.0]
    gamma_chart = charts[3]
    assert "no data" in ET.tostring(gamma_chart, encoding="unicode")
    # The headline figures, as the reader sees them.
    alpha_section = html.split(f'data-team="{seeded.alpha}"')[1].split("</section>")[0]
    assert 'data-metric="spend" data-nanos="6500000000">$6.50<' in alpha_section
    assert "65.0% of $10.00" in alpha_section
    assert ">gpt-4o<" in alpha_section and "alpha-app" in alpha_section
    assert "1 run: 0 passed the gate, 1 failed" in alpha_section
    assert "budget alpha" not in alpha_section and "team alpha</td>" in alpha_section  # named, not by id
    beta_section = html.split(f'data-team="{seeded.beta}"')[1].split("</section>")[0]
    assert 'class="over">125.0%' in beta_section


def test_team_names_are_escaped(engine: Engine) -> None:
    from keel.access import AccessAdmin, Actor

    AccessAdmin(engine).create_team(Actor.cli(), "<b>evil</b>")
    html = render_html(build_cost_report(engine, NOVEMBER, now=AFTER))
    assert "<b>evil</b>" not in html and "&lt;b&gt;evil&lt;/b&gt;" in html
    for chart in _charts(html):
        assert chart.attrib["role"] == "img"


def test_who_may_report_on_which_team() -> None:
    admin = Principal("k1", "admin", "admin", None)
    lead = Principal("k2", "lead", "team_admin", "team_a")
    member = Principal("k3", "member", "member", "team_a")
    assert report_team(None, None) is None  # the operator: every team
    assert report_team(admin, "team_b") == "team_b"
    assert report_team(lead, None) == "team_a"
    assert report_team(lead, "team_a") == "team_a"
    with pytest.raises(PermissionDenied, match="own team"):
        report_team(lead, "team_b")
    with pytest.raises(PermissionDenied):
        report_team(member, "team_a")


@pytest.mark.parametrize("text", ["2026-13", "2026/11", "nov", "26-11", ""])
def test_bad_months(text: str) -> None:
    with pytest.raises(InvalidRequest, match="YYYY-MM"):
        parse_month(text)


def test_month_windows() -> None:
    december = parse_month("2026-12")
    assert (december.start.isoformat(), december.end.isoformat()) == (
        "2026-12-01T00:00:00+00:00",
        "2027-01-01T00:00:00+00:00",
    )
    assert len(parse_month("2028-02").days) == 29 and december.label == "December 2026"
