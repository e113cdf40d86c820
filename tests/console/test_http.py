"""The console over HTTP (no browser): sessions, roles, team isolation of every page and
endpoint, and figures that match the seeded data."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from keel.access import AccessAdmin, Actor
from keel.console._sql import percentile
from tests.console.conftest import Console, running_console
from tests.console.expected import WEEK, WEEK_QUERY, aggregates, failed


def test_pages_need_a_session_and_endpoints_a_key(console: Console) -> None:
    with console.client() as anonymous:
        page = anonymous.get("/overview?range=7d")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/ui/login?next=")
        assert anonymous.get("/api/overview").status_code == 401
        assert anonymous.get("/cost.csv").status_code == 401
        assert anonymous.get("/login").status_code == 200


def test_login_refuses_bad_and_service_keys(console: Console) -> None:
    seeded = console.seeded
    service_key = AccessAdmin(console.keel.app.engine).create_key(
        Actor.cli(), name="svc", role="service", team_id=seeded.teams["search"].id
    )
    console.keel.app.keys.reload()
    with console.client() as client:
        assert client.post("/login", data={"key": "sk-keel-" + "x" * 43}).status_code == 401
        refused = client.post("/login", data={"key": service_key.secret})
        assert refused.status_code == 403
        assert "keel_console" not in refused.cookies


def test_the_session_cookie_is_httponly_lax_and_names_no_key(console: Console) -> None:
    with console.client() as client:
        response = client.post("/login", data={"key": console.seeded.admin_key, "next": "//evil.example/"})
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/overview"  # not another site
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
        assert console.seeded.admin_key not in cookie
        assert client.get("/overview").status_code == 200


def test_an_admin_sees_every_team_and_the_figures_match_the_seed(console: Console) -> None:
    expected = aggregates(console.seeded.records)
    with console.client(console.seeded.admin_key) as client:
        data = client.get("/api/overview", params=WEEK).json()
        assert data["requests"] == expected.requests
        assert data["errors"] == expected.errors
        assert data["cost_nanos"] == expected.cost_nanos
        assert data["saved_nanos"] == expected.saved_nanos
        assert data["guard_triggers"] == expected.guard_triggers
        assert sum(b["requests"] for b in data["buckets"]) == expected.requests
        assert sum(b["cost_nanos"] for b in data["buckets"]) == expected.cost_nanos
        by_team = client.get("/api/cost", params={**WEEK, "by": "team"}).json()["rows"]
        assert {row["id"] for row in by_team} == expected.teams


def test_a_team_key_sees_its_team_only_on_every_endpoint(console: Console) -> None:
    seeded = console.seeded
    search, support = seeded.teams["search"], seeded.teams["support"]
    mine = aggregates(seeded.records, search.id)
    theirs = next(r for r in seeded.records if r.team_id == support.id)
    with console.client(search.member_key) as client:
        data = client.get("/api/overview", params=WEEK).json()
        assert data["team_id"] == search.id
        assert data["requests"] == mine.requests
        assert data["cost_nanos"] == mine.cost_nanos
        listed = client.get("/api/requests", params=WEEK).json()["requests"]
        assert listed and {row["team_id"] for row in listed} == {search.id}
        # Asking for another team is refused, not widened or silently narrowed.
        assert client.get("/api/requests", params={**WEEK, "team": support.id}).status_code == 403
        assert client.get("/requests", params={**WEEK, "team": support.id}).status_code == 403
        # Another team's request does not exist for this key.
        assert client.get(f"/requests/{theirs.id}").status_code == 404
        by_team = client.get("/api/cost", params={**WEEK, "by": "team"}).json()["rows"]
        assert [row["id"] for row in by_team] == [search.id]
        rows = list(csv.DictReader(io.StringIO(client.get(f"/cost.csv?{WEEK_QUERY}&by=day,team").text)))
        assert rows and {row["team"] for row in rows} == {search.id}
        assert round(sum(float(row["cost_usd"]) for row in rows) * 1e9) == mine.cost_nanos
        cost_page = client.get("/cost", params=WEEK).text
        assert support.name not in cost_page and "research" not in cost_page
        # Eval runs belong to no team: not for team keys.
        assert client.get("/evals").status_code == 404
        assert ">Evals<" not in client.get("/overview").text
    with console.client() as client:
        bearer = {"Authorization": f"Bearer {search.admin_key}"}
        assert client.get("/api/overview", params=WEEK, headers=bearer).json()["requests"] == mine.requests


def test_a_revoked_keys_session_stops_working_at_once(console: Console) -> None:
    team = console.seeded.teams["research"]
    created = AccessAdmin(console.keel.app.engine).create_key(
        Actor.cli(), name="soon-revoked", role="member", team_id=team.id
    )
    console.keel.app.keys.reload()
    with console.client(created.secret) as client:
        assert client.get("/overview").status_code == 200
        AccessAdmin(console.keel.app.engine).revoke_key(Actor.cli(), created.key.id)
        assert client.get("/overview").status_code == 303
        assert client.get("/api/overview").status_code == 401


def test_logout_ends_the_session(console: Console) -> None:
    with console.client(console.seeded.admin_key) as client:
        assert client.get("/overview").status_code == 200
        response = client.post("/logout")
        assert response.status_code == 303
        assert client.get("/overview").status_code == 303


def test_request_filters_and_keyset_pages(console: Console) -> None:
    records = console.seeded.records
    with console.client(console.seeded.admin_key) as client:
        errors = client.get("/api/requests", params={**WEEK, "status": "error"}).json()
        assert errors["requests"] and all(
            row["status"] >= 400 or row["error_type"] for row in errors["requests"]
        )
        blocked = client.get("/api/requests", params={**WEEK, "guard": "block"}).json()["requests"]
        assert blocked and all("block" in (row["guard_input"], row["guard_output"]) for row in blocked)
        first = client.get("/api/requests", params=WEEK).json()
        second = client.get("/api/requests", params={**WEEK, "before": first["next"]}).json()
        ids = [row["id"] for row in first["requests"] + second["requests"]]
        newest = sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)[:100]
        assert ids == [r.id for r in newest]
        versioned = client.get("/api/requests", params={**WEEK, "prompt": "faq-answer@3"}).json()["requests"]
        assert versioned and {(r["prompt_name"], r["prompt_version"]) for r in versioned} == {
            ("faq-answer", 3)
        }
        found = client.get("/api/requests", params={**WEEK, "q": "HAIKU about"}).json()["requests"]
        expected = [r for r in records if "haiku about" in (r.request_body or "").lower()]
        assert found and len(found) == min(50, len(expected))


def test_every_page_renders_for_an_admin(console: Console) -> None:
    with console.client(console.seeded.admin_key) as client:
        listing = client.get(f"/requests?{WEEK_QUERY}").text
        request_id = re.search(r'data-request-id="([^"]+)"', listing)
        assert request_id
        for path in [
            f"/overview?{WEEK_QUERY}",
            f"/cost?{WEEK_QUERY}&stack=model",
            f"/requests/{request_id.group(1)}",
            "/prompts",
            f"/prompts/faq-answer?{WEEK_QUERY}",
            "/evals",
            "/alerts",
            "/access",
        ]:
            response = client.get(path)
            assert response.status_code == 200, (path, response.text[:500])
            assert "Content-Security-Policy" in response.headers
        run = client.get(f"/evals/{console.eval_run}")
        assert run.status_code == 200
        assert "faq-answer@v3 / gpt-4o-mini vs faq-answer@v2 / gpt-4o-mini" in run.text
        assert 'data-table="case-diff"' in run.text and "case-0" in run.text
        report = client.get(f"/evals/{console.eval_run}/report")
        assert report.status_code == 200 and "<!DOCTYPE html>" in report.text
        assert client.get("/evals/nope").status_code == 404
        assert client.get("/requests/nope").status_code == 404
        assert client.get("/overview?range=2w").status_code == 400


def test_the_same_figures_and_isolation_on_each_database(database_url: str, tmp_path: Path) -> None:
    # The aggregates take different SQL on PostgreSQL (time truncation, percentiles, the
    # guard index's condition): the same seeded data must give the same answers.
    for running in running_console(tmp_path, database_url):
        seeded = running.seeded
        team = seeded.teams["growth"]
        for key, team_id in ((seeded.admin_key, None), (team.member_key, team.id)):
            expected = aggregates(seeded.records, team_id)
            with running.client(key) as client:
                data = client.get("/api/overview", params=WEEK).json()
                assert (data["requests"], data["errors"]) == (expected.requests, expected.errors)
                assert (data["cost_nanos"], data["guard_triggers"]) == (
                    expected.cost_nanos,
                    expected.guard_triggers,
                )
                latencies = sorted(
                    r.latency_ms
                    for r in seeded.records
                    if r.latency_ms is not None and not failed(r) and team_id in (None, r.team_id)
                )
                assert data["latency_p95_ms"] == pytest.approx(percentile(latencies, 0.95), rel=1e-9)
                listed = client.get("/api/requests", params={**WEEK, "guard": "any"}).json()["requests"]
                assert listed
                assert team_id is None or {row["team_id"] for row in listed} == {team_id}
                for name in ("/overview", "/cost", "/requests", "/prompts/faq-answer"):
                    assert client.get(name, params=WEEK).status_code == (
                        200 if team_id is None or name != "/prompts/faq-answer" else 404
                    )
