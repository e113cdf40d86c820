"""The Drift page over HTTP: the latest test per signal, the score and mean charts from
the seeded history, the examples that drifted most (and what their ranking is), and a
team key kept to the routes and requests of its team."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta

import pytest
from bench.console_seed import DRIFT_ROUTE, seed_drift

from keel.monitor import DriftResult, store_results
from keel.store import insert_records
from tests.console.conftest import SEED_NOW, Console

# The seeded day of drift results (hourly, the last at SEED_NOW), as URL parameters.
DAY = {"range": "custom", "from": "2026-11-19T12:00", "to": "2026-11-20T13:00"}
PRIVATE_ROUTE = "support-only"
GERMAN = "Wie kann ich mein Passwort zurücksetzen und wo finde ich die Einstellungen dafür?"


@pytest.fixture(scope="module")
def drift(console: Console) -> list[DriftResult]:
    """The seeded day, plus a route only the support team sent requests to: one German
    question in the last window, and a language test that saw German grow."""
    engine = console.keel.app.engine
    results = seed_drift(engine, SEED_NOW)
    support = console.seeded.teams["support"]
    template = next(r for r in console.seeded.records if r.team_id == support.id and r.status == 200)
    body = json.loads(template.request_body or "{}")
    body["messages"][-1]["content"] = GERMAN
    private = replace(
        template,
        id="req_private_support_0001",
        created_at=SEED_NOW - timedelta(minutes=10),
        route=PRIVATE_ROUTE,
        requested_model=PRIVATE_ROUTE,
        request_body=json.dumps(body),
    )
    insert_records(engine, [private])
    language = replace(
        next(r for r in results if r.signal == "error_rate"),
        route=PRIVATE_ROUTE,
        signal="language",
        detector="chi_square",
        drifted=True,
        score=40.0,
        p_value=1e-6,
        threshold=None,
        details={"compare": "p_value", "moved": [{"category": "de", "reference": 0.01, "current": 0.4}]},
    )
    language = replace(language, at=SEED_NOW, window_start=SEED_NOW - timedelta(hours=1))
    store_results(engine, [language])
    return results


def values_in(html: str, chart_name: str) -> list[float]:
    """The data-value of every plotted point inside one signal's figure."""
    figure = re.search(rf'data-chart-name="{chart_name}">(.*?)</figure>', html, re.S)
    assert figure, chart_name
    return [float(v) for v in re.findall(r'data-value="([^"]+)"', figure.group(1))]


def example_ids(html: str, signal: str) -> list[str]:
    table = re.search(rf'data-table="drift-examples" data-signal="{signal}">(.*?)</table>', html, re.S)
    return re.findall(r'data-request-id="([^"]+)"', table.group(1)) if table else []


def test_an_admin_sees_each_signal_its_history_and_what_drifted(
    console: Console, drift: list[DriftResult]
) -> None:
    with console.client(console.seeded.admin_key) as client:
        page = client.get("/drift", params=DAY)
    assert page.status_code == 200
    html = page.text
    # Every route with results; the one where signals drifted is shown first.
    assert re.search(rf'<option value="{DRIFT_ROUTE}" selected>', html)
    assert f'<option value="{PRIVATE_ROUTE}"' in html
    assert '<a href="/ui/drift?range=custom' in html  # in the navigation, keeping the range
    latest = {r.signal: r for r in drift if r.route == DRIFT_ROUTE and r.at == SEED_NOW}
    rows = dict(re.findall(r'<tr data-signal="([^"]+)" data-drifted="(true|false)">', html))
    assert rows == {s: "true" if r.drifted else "false" for s, r in latest.items()}
    assert rows["input_tokens"] == "true" and rows["latency_ms"] == "false"
    # The score chart holds the day's 24 scores, in order; ks has no score threshold.
    history = [r for r in drift if r.route == DRIFT_ROUTE and r.signal == "input_tokens"]
    plotted = values_in(html, "drift-input_tokens")
    assert len(history) == 24
    assert plotted[:24] == pytest.approx([r.score for r in history], rel=1e-6)
    # ... then the mean chart: reference and current means.
    assert plotted[24:48] == pytest.approx([r.reference_mean for r in history], rel=1e-6)
    assert plotted[48:] == pytest.approx([r.current_mean for r in history], rel=1e-6)
    # Wasserstein compares its score with a threshold: drawn alongside.
    assert len(values_in(html, "drift-latency_ms")) == 24 + 24 + 48
    # Examples: the classifier's own ranking, and distance from the reference mean.
    classified = [e["id"] for e in latest["input_embedding"].details["examples"]]
    assert classified and example_ids(html, "input_embedding") == classified
    assert "domain classifier&#39;s probability" in html
    by_tokens = example_ids(html, "input_tokens")
    assert by_tokens
    records = {r.id: r for r in console.seeded.records}
    distances = [abs((records[i].input_tokens or 0) - 920.0) for i in by_tokens]
    assert distances == sorted(distances, reverse=True)
    assert all(records[i].route == DRIFT_ROUTE for i in by_tokens)
    assert "furthest from the reference mean (920) first" in html
    for request_id in by_tokens + classified:
        assert f'href="/ui/requests/{request_id}"' in html


def test_a_category_that_grew_names_its_requests(console: Console, drift: list[DriftResult]) -> None:
    with console.client(console.seeded.admin_key) as client:
        html = client.get("/drift", params={**DAY, "route": PRIVATE_ROUTE}).text
    assert example_ids(html, "language") == ["req_private_support_0001"]
    assert "the category whose share grew most (1.0% of the reference, 40.0% now)" in html


def test_a_team_sees_only_routes_it_used_and_its_own_requests(
    console: Console, drift: list[DriftResult]
) -> None:
    seeded = console.seeded
    search, support = seeded.teams["search"], seeded.teams["support"]
    records = {r.id: r for r in seeded.records}
    with console.client(search.member_key) as client:
        html = client.get("/drift", params=DAY).text
        assert f'<option value="{DRIFT_ROUTE}" selected>' in html
        assert PRIVATE_ROUTE not in html
        # Another team's route answers as one that does not exist.
        assert client.get("/drift", params={**DAY, "route": PRIVATE_ROUTE}).status_code == 404
        for signal in ("input_embedding", "input_tokens"):
            ids = example_ids(html, signal)
            assert all(records[i].team_id == search.id for i in ids), signal
        classified = [e["id"] for e in next(
            r for r in drift if r.route == DRIFT_ROUTE and r.at == SEED_NOW and r.signal == "input_embedding"
        ).details["examples"]]  # fmt: skip
        assert set(example_ids(html, "input_embedding")) == {
            i for i in classified if records[i].team_id == search.id
        }
    with console.client(support.member_key) as client:
        html = client.get("/drift", params={**DAY, "route": PRIVATE_ROUTE}).text
        assert example_ids(html, "language") == ["req_private_support_0001"]


def test_the_drift_page_needs_a_session(console: Console) -> None:
    with console.client() as anonymous:
        response = anonymous.get("/drift")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/login?next=")
