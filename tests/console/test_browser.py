"""The console in headless Chromium: sign in, every page, filters, a request's detail,
charts drawn from the seeded data, the CSV export, and a team's key kept to its team."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.console.conftest import Console
from tests.console.expected import WEEK_QUERY, aggregates

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


def sign_in(browser: Browser, console: Console, key: str) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page.set_default_timeout(10_000)
    page.goto(f"{console.url}/overview?{WEEK_QUERY}")
    # Not signed in: the login form, which comes back here afterwards.
    expect(page).to_have_url(f"{console.url}/login?{urlencode({'next': f'/ui/overview?{WEEK_QUERY}'})}")
    page.fill("#key", key)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")
    return page


def values(scope: Locator) -> list[float]:
    """The ``data-value`` of every plotted point or bar inside ``scope``."""
    found = scope.locator("[data-value]").evaluate_all("els => els.map(e => e.getAttribute('data-value'))")
    return [float(v) for v in found]


def test_an_admin_walks_every_page(browser: Browser, console: Console) -> None:
    seeded = console.seeded
    expected = aggregates(seeded.records)
    page = sign_in(browser, console, seeded.admin_key)
    try:
        # Overview: the custom week is 56 three-hour buckets; every chart has them all.
        assert page.url.endswith(WEEK_QUERY)
        expect(page.locator("[data-metric=requests]")).to_have_text(f"{expected.requests:,}")
        expect(page.locator("[data-metric=guard-triggers]")).to_have_text(f"{expected.guard_triggers:,}")
        lines = page.locator('svg[data-chart="line"]')
        expect(lines).to_have_count(2)
        requests_and_errors = values(lines.first)
        assert len(requests_and_errors) == 2 * 56
        assert sum(requests_and_errors[:56]) == expected.requests
        assert sum(requests_and_errors[56:]) == expected.errors
        spend = values(page.locator('svg[data-chart="stacked"]'))
        assert len(spend) == 56
        assert sum(spend) == pytest.approx(expected.cost_nanos / 1e9, rel=1e-6)

        # A preset from the picker applies at once (the page's small script).
        page.select_option("[data-range-select]", "7d")
        page.wait_for_url("**/overview?range=7d")
        page.goto(f"{console.url}/overview?{WEEK_QUERY}")

        # Cost: stacked by team, top lists, and the CSV export.
        page.click("nav >> text=Cost")
        expect(page.locator("h1")).to_have_text("Cost")
        stacked = values(page.locator('[data-chart-name="stacked"] svg'))
        assert sum(stacked) == pytest.approx(expected.cost_nanos / 1e9, rel=1e-6)
        legend = page.locator('[data-chart-name="stacked"]').inner_text()
        assert all(team in legend for team in seeded.teams)
        by_team = values(page.locator('[data-chart-name="team"] svg'))
        assert len(by_team) == len(seeded.teams)
        with page.expect_download() as download:
            page.click("[data-csv-form] button")
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        assert {row["team_name"] for row in rows} == set(seeded.teams)
        assert sum(int(row["requests"]) for row in rows) == expected.requests

        # Requests: filter by status through the form, then open one.
        page.click("nav >> text=Requests")
        page.select_option("select[name=status]", "error")
        page.click("[data-filters] button")
        page.wait_for_url("**status=error**")
        statuses = page.locator("table.requests tbody td:nth-child(3)").all_inner_texts()
        assert statuses and all(s.split()[0] != "200" or len(s.split()) > 1 for s in statuses)
        page.select_option("select[name=status]", "")
        page.select_option("select[name=guard]", "block")
        page.click("[data-filters] button")
        expect(page.locator("table.requests tbody tr").first.locator(".guard")).to_have_text("block")
        page.locator("table.requests tbody tr").first.click()
        expect(page.locator("h1")).to_contain_text("Request req_")
        expect(page.locator("h3", has_text="input")).to_contain_text("block")
        page.go_back()
        page.select_option("select[name=guard]", "")
        page.click("[data-filters] button")
        streamed = next(r for r in reversed(sorted(seeded.records, key=lambda r: r.created_at)) if r.ttft_ms)
        page.goto(f"{console.url}/requests/{streamed.id}")
        waterfall = values(page.locator("svg.waterfall"))
        assert waterfall[0] == pytest.approx(streamed.ttft_ms, abs=0.1)
        assert waterfall[-1] == pytest.approx(streamed.latency_ms, abs=0.1)
        expect(page.locator(".msg").first).to_contain_text("You are a helpful assistant")

        # Prompts, a prompt's versions, Evals, Alerts, Keys and teams.
        page.click("nav >> text=Prompts")
        page.click("text=faq-answer")
        expect(page.locator("h1")).to_have_text("Prompt faq-answer")
        page.goto(f"{page.url}?{WEEK_QUERY}")
        served = [r for r in seeded.records if r.prompt_name == "faq-answer" and r.prompt_version == 2]
        expect(page.locator("tr[data-version='2'] td").nth(4)).to_have_text(f"{len(served):,}")
        for title in ("Evals", "Alerts", "Keys and teams"):
            page.click(f"nav >> text={title}")
            expect(page.locator("h1")).to_have_text(title)
        expect(page.locator("table[data-table=teams] tbody tr")).to_have_count(len(seeded.teams))
    finally:
        page.close()


def test_a_team_key_sees_no_other_team(browser: Browser, console: Console) -> None:
    seeded = console.seeded
    team = seeded.teams["support"]
    mine = aggregates(seeded.records, team.id)
    other = next(r for r in seeded.records if r.team_id != team.id)
    page = sign_in(browser, console, team.admin_key)
    try:
        expect(page.locator("[data-metric=requests]")).to_have_text(f"{mine.requests:,}")
        expect(page.locator("header .who")).to_contain_text("support")
        expect(page.locator("nav >> text=Evals")).to_have_count(0)
        page.click("nav >> text=Requests")
        teams_shown = set(page.locator("table.requests tbody td:nth-child(6)").all_inner_texts())
        assert teams_shown == {"support"}
        page.click("nav >> text=Cost")
        body = page.locator("main").inner_text()
        assert all(name not in body for name in seeded.teams if name != "support")
        response = page.goto(f"{console.url}/requests/{other.id}")
        assert response is not None and response.status == 404
        page.click("nav >> text=Keys and teams")
        expect(page.locator("table[data-table=teams] tbody tr")).to_have_count(1)
    finally:
        page.close()
