"""The Feedback page and an annotation queue's review form: over HTTP (team isolation,
the session's CSRF token, what a review stores) and once in headless Chromium (the drift
chart drawn from the seeded history, and a review submitted through the form)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest
from bench.console_seed import DRIFT_ROUTE, SeededFeedback, seed_drift, seed_feedback
from sqlalchemy import select

from keel.feedback import feedback, get_queue, queue_status
from tests.console.conftest import SEED_NOW, Console, running_console
from tests.console.expected import WEEK

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DAY_QUERY = "range=custom&from=2026-11-19T12:00&to=2026-11-20T13:00"


@pytest.fixture(scope="module")
def loop(console: Console) -> SeededFeedback:
    engine = console.keel.app.engine
    seed_drift(engine, SEED_NOW)
    return seed_feedback(engine, console.seeded)


def review_form(client: httpx.Client, queue_id: str) -> tuple[str, str]:
    """(csrf token, request id) of the reviewer's next item."""
    html = client.get(f"/feedback/queues/{queue_id}").text
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    request_id = re.search(r'name="request_id" value="([^"]+)"', html)
    assert csrf and request_id, html
    return csrf.group(1), request_id.group(1)


def chart_values(html: str, name: str) -> list[float]:
    figure = re.search(rf'data-chart-name="{name}">(.*?)</figure>', html, re.S)
    assert figure, name
    return [float(v) for v in re.findall(r'data-value="([^"]+)"', figure.group(1))]


def reviews(console: Console, queue_id: str) -> list[tuple[str, str, dict[str, object] | None]]:
    query = select(feedback.c.request_id, feedback.c.reviewer, feedback.c.score).where(
        feedback.c.queue_id == queue_id
    )
    with console.keel.app.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]  # type: ignore[misc]


def test_recent_feedback_and_queues_are_held_to_the_team(console: Console, loop: SeededFeedback) -> None:
    seeded = console.seeded
    search, support = seeded.teams["search"], seeded.teams["support"]
    team_of = {r.id: r.team_id for r in seeded.records}
    with console.client(seeded.admin_key) as client:
        html = client.get("/feedback", params=WEEK).text
        listed = re.findall(r'<tr data-request-id="([^"]+)">', html)
        assert len(listed) == 50  # the newest 50 of the week
        assert len({team_of[i] for i in listed}) > 1
        assert f'data-queue="{loop.queue}"' in html and f'data-queue="{loop.other_queue}"' in html
        assert re.search(r'data-metric="feedback">(\d+)<', html).group(1) == str(loop.feedback)  # type: ignore[union-attr]
        # The week in 56 three-hour buckets: the mean score where there were scores, and
        # every piece of feedback counted once by its kind.
        means, kinds = chart_values(html, "feedback-1"), chart_values(html, "feedback-2")
        assert 0 < len(means) <= 56 and all(0 <= v <= 1 for v in means)
        assert len(kinds) == 3 * 56 and sum(kinds) == loop.feedback
    with console.client(search.member_key) as client:
        html = client.get("/feedback", params=WEEK).text
        listed = re.findall(r'<tr data-request-id="([^"]+)">', html)
        assert listed and {team_of[i] for i in listed} == {search.id}
        assert f'data-queue="{loop.other_queue}"' in html
        assert loop.queue not in html
        # Another team's queue answers as one that does not exist, for reading and writing.
        support_queue = get_queue(console.keel.app.engine, loop.queue)
        assert client.get(f"/feedback/queues/{support_queue.id}").status_code == 404
        own = get_queue(console.keel.app.engine, loop.other_queue)
        csrf, _ = review_form(client, own.id)
        posted = client.post(
            f"/feedback/queues/{support_queue.id}",
            data={"csrf": csrf, "request_id": "req_x", "thumbs": "up"},
        )
        assert posted.status_code == 404
    with console.client(support.member_key) as client:
        html = client.get(f"/feedback/queues/{support_queue.id}").text
        # Both reviewers rated the first four items: agreement on thumbs and rating.
        assert '<tr data-score="thumbs">' in html and '<tr data-score="rating">' in html
        assert 'data-reviewer="support-member"' in html


def test_a_reviewer_submits_a_review_through_the_form(console: Console, loop: SeededFeedback) -> None:
    queue = get_queue(console.keel.app.engine, loop.queue)
    reviewer = console.seeded.teams["support"]
    before = queue_status(console.keel.app.engine, queue.id).reviewers["support-member"]["done"]
    with console.client(reviewer.member_key) as client:
        csrf, request_id = review_form(client, queue.id)
        data = {"csrf": csrf, "request_id": request_id, "thumbs": "down", "rating": "2"}
        data["correction"] = "Say 5 days."
        posted = client.post(f"/feedback/queues/{queue.id}", data=data)
        assert posted.status_code == 303
        assert posted.headers["location"] == f"/ui/feedback/queues/{queue.id}?done={request_id}"
        page = client.get(console.keel.url + posted.headers["location"])
        assert 'data-message="saved"' in page.text
        # The next item is another request.
        _, following = review_form(client, queue.id)
        assert following != request_id
    after = queue_status(console.keel.app.engine, queue.id).reviewers["support-member"]["done"]
    assert after == before + 1
    assert (request_id, "support-member", {"thumbs": "down", "rating": 2}) in reviews(console, queue.id)


def test_a_reviewer_picks_between_two_answers_to_the_same_prompt(
    console: Console, loop: SeededFeedback
) -> None:
    queue = get_queue(console.keel.app.engine, loop.queue)
    with console.client(console.seeded.teams["support"].admin_key) as client:
        html = client.get(f"/feedback/queues/{queue.id}").text
        other = re.search(r'name="other" value="([^"]+)"', html)
        assert other, "the seeded queue holds two answers to one prompt"
        csrf, request_id = review_form(client, queue.id)
        data = {"csrf": csrf, "request_id": request_id, "pick": "other", "other": other.group(1)}
        assert client.post(f"/feedback/queues/{queue.id}", data=data).status_code == 303
    query = select(feedback.c.chosen_request_id, feedback.c.rejected_request_id).where(
        feedback.c.queue_id == queue.id,
        feedback.c.request_id == request_id,
        feedback.c.reviewer == "support-admin",
    )
    with console.keel.app.engine.connect() as connection:
        assert tuple(connection.execute(query).one()) == (other.group(1), request_id)


def test_a_form_without_the_sessions_token_is_refused(console: Console, loop: SeededFeedback) -> None:
    queue = get_queue(console.keel.app.engine, loop.queue)
    support = console.seeded.teams["support"]
    stored = reviews(console, queue.id)
    with console.client(support.admin_key) as other:
        other_csrf, _ = review_form(other, queue.id)
    with console.client(support.member_key) as client:
        _, request_id = review_form(client, queue.id)
        for token in (None, "", other_csrf):
            data = {"request_id": request_id, "thumbs": "up"} | ({"csrf": token} if token is not None else {})
            refused = client.post(f"/feedback/queues/{queue.id}", data=data)
            assert refused.status_code == 403
        # Nothing given: said on the form, nothing stored.
        csrf, _ = review_form(client, queue.id)
        empty = client.post(f"/feedback/queues/{queue.id}", data={"csrf": csrf, "request_id": request_id})
        assert empty.status_code == 200
        assert "Give a score, a correction or a pick." in empty.text
    with console.client() as anonymous:
        assert anonymous.post(f"/feedback/queues/{queue.id}", data={"thumbs": "up"}).status_code == 303
    assert reviews(console, queue.id) == stored


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_in_a_browser_the_drift_chart_draws_and_a_review_is_saved(
    console: Console, loop: SeededFeedback
) -> None:
    from playwright.sync_api import expect, sync_playwright

    queue = get_queue(console.keel.app.engine, loop.queue)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(10_000)
            page.goto(f"{console.url}/login")
            page.fill("#key", console.seeded.teams["support"].admin_key)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Overview")

            page.goto(f"{console.url}/drift?{DAY_QUERY}")
            expect(page.locator("h1")).to_have_text("Drift")
            expect(page.locator("[data-route-select]")).to_have_value(DRIFT_ROUTE)
            scores = page.locator('[data-chart-name="drift-input_embedding"] svg[data-chart="line"]').first
            expect(scores.locator("[data-value]")).to_have_count(24 + 24)  # scores and the threshold
            embedding = page.locator('tr[data-signal="input_embedding"]')
            expect(embedding).to_have_attribute("data-drifted", "true")

            page.click("nav >> text=Feedback")
            expect(page.locator("h1")).to_have_text("Feedback")
            page.click(f"text={loop.queue}")
            expect(page.locator("h1")).to_have_text(f"Queue {loop.queue}")
            item = page.locator("[data-review-item]").get_attribute("data-review-item")
            page.check("input[name=thumbs][value=up]")
            page.select_option("select[name=rating]", "5")
            page.click("text=Save review")
            expect(page.locator('[data-message="saved"]')).to_contain_text(str(item))
        finally:
            browser.close()
    assert (item, "support-admin", {"thumbs": "up", "rating": 5}) in reviews(console, queue.id)


def test_both_pages_on_each_database(database_url: str, tmp_path: Path) -> None:
    # JSON null scores, the per-bucket counts and the routes a team used take dialect SQL:
    # the same seed must give the same pages on PostgreSQL.
    for running in running_console(tmp_path, database_url):
        seeded_loop = seed_feedback(running.keel.app.engine, running.seeded)
        seed_drift(running.keel.app.engine, SEED_NOW)
        search = running.seeded.teams["search"]
        team_of = {r.id: r.team_id for r in running.seeded.records}
        with running.client(running.seeded.admin_key) as client:
            html = client.get("/feedback", params=WEEK).text
            assert sum(chart_values(html, "feedback-2")) == seeded_loop.feedback
            drift = client.get("/drift", params={"range": "custom", "from": "2026-11-19T12:00"}).text
            assert f'<option value="{DRIFT_ROUTE}" selected>' in drift
        with running.client(search.member_key) as client:
            html = client.get("/feedback", params=WEEK).text
            listed = re.findall(r'<tr data-request-id="([^"]+)">', html)
            assert listed and {team_of[i] for i in listed} == {search.id}
            assert seeded_loop.queue not in html
            drift = client.get("/drift", params={"range": "custom", "from": "2026-11-19T12:00"}).text
            assert f'<option value="{DRIFT_ROUTE}" selected>' in drift
