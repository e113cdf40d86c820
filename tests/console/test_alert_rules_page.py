"""Alert rules on the Alerts page, over HTTP on a real Keel: keel.yaml's listed
read-only, an admin adds and deletes managed rules through the form (with the session's
CSRF token), a refused rule's problem is shown on the form, a team key only looks."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from keel.access import AccessAdmin, Actor
from keel.alerts import list_managed_rules
from keel.console._session import COOKIE_NAME, SessionSigner
from keel.core import AlertSettings
from keel.store import read_audit
from tests.console.conftest import console_settings, start_keel_with_console
from tests.gateway.conftest import RunningGateway


@dataclass
class Keys:
    keel: RunningGateway
    admin: str
    member: str

    @contextlib.contextmanager
    def client(self, key: str) -> Iterator[httpx.Client]:
        """Signed in with ``key`` (a session cookie)."""
        with httpx.Client(base_url=f"{self.keel.url}/ui", timeout=20, follow_redirects=False) as client:
            response = client.post("/login", data={"key": key})
            assert response.status_code == 303, response.text
            yield client


@pytest.fixture(scope="module")
def keel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    settings = console_settings(tmp_path_factory.mktemp("alert-rules"))
    alerts = AlertSettings.model_validate(
        {
            "interval": "1h",  # the server's own evaluator stays out of the way
            "channels": {
                "ops": {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
                "pager": {"type": "webhook", "url": "http://127.0.0.1:9/pager"},
            },
            "rules": [{"name": "yaml-errors", "kind": "error_rate", "threshold": 5, "channels": ["ops"]}],
        }
    )
    running = start_keel_with_console(settings.model_copy(update={"alerts": alerts}))
    try:
        access, cli = AccessAdmin(running.app.engine), Actor.cli()
        admin = access.create_key(cli, name="console-admin", role="admin").secret
        team = access.create_team(cli, "search")
        member = access.create_key(cli, name="search-member", role="member", team_id=team.id).secret
        running.app.keys.reload()
        yield Keys(running, admin, member)
    finally:
        running.stop()


SECRET = "test-console-secret"  # console_settings' secret


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, html
    return found.group(1)


def rule_rows(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-rule="([^"]+)" data-source="([^"]+)">', html))


def test_an_admin_adds_and_deletes_a_rule_through_the_form(keel: Keys) -> None:
    engine = keel.keel.app.engine
    with keel.client(keel.admin) as client:
        page = client.get("/alerts")
        assert page.status_code == 200
        html = page.text
        assert rule_rows(html) == {"yaml-errors": "keel.yaml"}
        assert "data-delete-rule" not in html  # keel.yaml's rule cannot be deleted here
        assert 'name="channel.ops"' in html and 'name="channel.pager"' in html
        assert '<option value="latency_p95">' in html
        form = {
            "csrf": csrf_of(html),
            "action": "add",
            "name": "slow-chat",
            "kind": "latency_p95",
            "threshold": "1500",
            "window": "10m",
            "for": "1m",
            "severity": "critical",
            "channel.pager": "on",
            "filters": "route=gpt-4o\n\nteam = search\n",
        }
        added = client.post("/alerts", data=form)
        assert added.status_code == 303, added.text
        assert added.headers["location"].endswith("/ui/alerts?added=slow-chat")
        [rule] = list_managed_rules(engine)
        assert rule.rule == {
            "name": "slow-chat",
            "kind": "latency_p95",
            "threshold": 1500.0,
            "window": 600.0,
            "for": 60.0,
            "severity": "critical",
            "channels": ["pager"],
            "filters": {"route": "gpt-4o", "team": "search"},
        }
        assert rule.created_by.startswith("key:") and "console-admin" in rule.created_by
        html = client.get("/alerts").text
        assert rule_rows(html) == {"yaml-errors": "keel.yaml", "slow-chat": "console"}
        assert 'data-delete-rule="slow-chat"' in html

        deleted = client.post(
            "/alerts", data={"csrf": csrf_of(html), "action": "delete", "name": "slow-chat"}
        )
        assert deleted.status_code == 303
        assert list_managed_rules(engine) == []
        assert rule_rows(client.get("/alerts").text) == {"yaml-errors": "keel.yaml"}
        # Without the session's token, nothing is posted.
        forged = client.post("/alerts", data={**form, "csrf": "0" * 64})
        assert forged.status_code == 403 and list_managed_rules(engine) == []
    actions = [(e.action, e.target_id) for e in read_audit(engine) if e.target_type == "alert_rule"]
    assert actions == [("alert_rule.delete", "slow-chat"), ("alert_rule.create", "slow-chat")]


def test_a_refused_rule_shows_its_problem_on_the_form(keel: Keys) -> None:
    with keel.client(keel.admin) as client:
        csrf = csrf_of(client.get("/alerts").text)
        form = {"csrf": csrf, "action": "add", "name": "bad", "kind": "error_rate", "threshold": "lots"}
        response = client.post("/alerts", data=form)
        assert response.status_code == 200
        error = re.search(r'data-field-error="threshold">([^<]+)<', response.text)
        assert error and "valid number" in error.group(1)
        assert 'name="threshold" size="10" value="lots"' in response.text  # kept as typed
        taken = client.post("/alerts", data={**form, "name": "yaml-errors", "threshold": "5"})
        assert "already defined in keel.yaml" in taken.text
        lines = client.post("/alerts", data={**form, "threshold": "5", "filters": "route gpt-4o"})
        assert re.search(r'data-field-error="filters">line 1: write key=value', lines.text)
    assert list_managed_rules(keel.keel.app.engine) == []


def test_a_team_key_sees_the_rules_but_cannot_change_them(keel: Keys) -> None:
    with keel.client(keel.member) as client:
        html = client.get("/alerts").text
        assert "yaml-errors" in rule_rows(html)
        assert "data-add-rule" not in html and "data-delete-rule" not in html
        # The page has no form for it; a valid token for this session, made as the app does.
        signer = SessionSigner(SECRET, 3600)
        csrf = signer.csrf_token(client.cookies[COOKIE_NAME])
        form = {"csrf": csrf, "action": "add", "name": "mine", "kind": "error_rate", "threshold": "5"}
        refused = client.post("/alerts", data=form)
        assert refused.status_code == 403 and "Only admin keys change alert rules" in refused.text
        deleted = client.post("/alerts", data={"csrf": csrf, "action": "delete", "name": "yaml-errors"})
        assert deleted.status_code == 403
    assert list_managed_rules(keel.keel.app.engine) == []
