"""The channel types against real servers: a Slack-compatible payload, mail through a
small SMTP server, webhook headers; and the test message."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_string, policy

import pytest
from sqlalchemy import Engine

from keel.alerts import AlertEngine, AlertMessage, build_channels, slack_payload
from keel.core import AlertSettings, NotFound
from tests.alerts.conftest import Mailbox, Receiver, alert_settings, seed_requests

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
RULE = {"name": "errors", "kind": "error_rate", "threshold": 10, "min_requests": 1, "severity": "critical"}


def _settings(channels: dict[str, dict[str, object]]) -> AlertSettings:
    return AlertSettings.model_validate(
        {
            "console_url": "http://keel.test/ui/alerts",
            "channels": channels,
            "rules": [{**RULE, "channels": list(channels)}],
        }
    )


async def test_slack_gets_text_and_blocks(engine: Engine, receiver: Receiver) -> None:
    # A channel named "slack" is of type slack without saying so.
    alerts = AlertEngine(_settings({"slack": {"url": receiver.url, "username": "keel"}}), engine)
    seed_requests(engine, NOW, 3, status=500)
    await alerts.evaluate_once(NOW)
    [payload] = receiver.received
    assert set(payload) == {"text", "blocks", "username"}
    assert payload["text"].startswith(":red_circle: [FIRING] errors (critical): error rate 100.0%")
    kinds = [block["type"] for block in payload["blocks"]]
    assert kinds == ["header", "section", "section", "context", "actions"]
    assert payload["blocks"][0]["text"] == {"type": "plain_text", "text": "[FIRING] errors (critical)"}
    fields = [f["text"] for f in payload["blocks"][2]["fields"]]
    assert fields == ["*State*\nfiring", "*Severity*\ncritical", "*Value*\n100", "*Threshold*\n10"]
    assert payload["blocks"][4]["elements"][0]["url"] == "http://keel.test/ui/alerts"


def test_a_resolved_slack_message_says_so() -> None:
    message = AlertMessage(
        "errors",
        "error_rate",
        "resolved",
        "warning",
        "error rate 1.0%",
        1.0,
        10.0,
        labels={"route": "chat"},
        started_at=NOW,
        resolved_at=NOW,
    )
    payload = slack_payload(message)
    assert payload["text"].startswith(":white_check_mark: [RESOLVED] errors")
    context = payload["blocks"][3]["elements"][0]["text"]
    assert "`route=chat`" in context and "resolved at 2026-11-25T12:00:00+00:00" in context
    assert [b["type"] for b in payload["blocks"]][-1] == "context"  # no URL, no button


async def test_email_goes_through_smtp(engine: Engine, mailbox: Mailbox) -> None:
    channel = {
        "type": "email",
        "host": mailbox.host,
        "port": mailbox.port,
        "from": "keel@example.com",
        "to": "oncall@example.com",
        "starttls": False,
    }
    alerts = AlertEngine(_settings({"oncall": channel}), engine)
    seed_requests(engine, NOW, 2, status=500)
    [event] = await alerts.evaluate_once(NOW)
    assert event.notifications["oncall"]["ok"] is True
    [mail] = mailbox.messages
    assert mail["from"] == "keel@example.com" and mail["to"] == ["oncall@example.com"]
    parsed = message_from_string(mail["data"], policy=policy.default)
    assert str(parsed["Subject"]).strip().startswith("[FIRING] errors (critical): error rate 100.0%")
    body = parsed.get_content()  # type: ignore[attr-defined]
    assert "severity:  critical" in body and "http://keel.test/ui/alerts" in body


async def test_an_unreachable_smtp_server_is_a_recorded_failure(engine: Engine) -> None:
    channel = {
        "type": "email",
        "host": "127.0.0.1",
        "port": 1,
        "from": "k@x.io",
        "to": ["a@x.io"],
        "retries": 0,
    }
    alerts = AlertEngine(_settings({"oncall": channel}), engine)
    seed_requests(engine, NOW, 2, status=500)
    [event] = await alerts.evaluate_once(NOW)
    assert event.notifications["oncall"]["ok"] is False
    assert "Connection refused" in event.notifications["oncall"]["error"]


async def test_webhook_headers_and_the_test_message(engine: Engine, receiver: Receiver) -> None:
    settings = alert_settings(receiver, RULE, headers={"Authorization": "Bearer s3cret"})
    alerts = AlertEngine(settings, engine)
    delivery = await alerts.send_test("hook")
    assert delivery.ok and delivery.attempts == 1
    [message] = receiver.received
    assert receiver.headers[0]["Authorization"] == "Bearer s3cret"
    assert set(message) >= {
        "alert",
        "state",
        "severity",
        "summary",
        "value",
        "threshold",
        "labels",
        "started_at",
        "resolved_at",
        "url",
    }
    assert message["alert"] == "keel-test" and message["labels"] == {"channel": "hook"}
    with pytest.raises(NotFound, match="No alert channel 'nope'"):
        await alerts.send_test("nope")


def test_channels_build_with_their_defaults(receiver: Receiver) -> None:
    channels = build_channels(_settings({"hook": {"type": "webhook", "url": receiver.url, "timeout": 2}}))
    assert channels["hook"].retries == 3 and channels["hook"].timeout == 2
