"""The built-in channel types: ``webhook`` (generic JSON POST), ``slack`` (a
Slack-compatible incoming webhook: ``text`` plus Block Kit ``blocks``) and ``email``
(SMTP, in a worker thread since smtplib blocks)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from typing import Annotated, Any

import aiohttp
from pydantic import BeforeValidator, Field

from keel.alerts._notify import AlertMessage, Notifier, notifier


async def _post_json(url: str, payload: dict[str, Any], headers: dict[str, str], timeout: float) -> None:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.post(url, json=payload, headers=headers) as response,
    ):
        if response.status >= 300:
            body = (await response.text())[:200]
            raise RuntimeError(f"{url} answered {response.status}: {body}")


class WebhookNotifier:
    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = headers

    async def send(self, message: AlertMessage, *, timeout: float) -> None:
        await _post_json(self.url, message.as_json(), self.headers, timeout)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def slack_payload(message: AlertMessage, username: str | None = None) -> dict[str, Any]:
    """An incoming-webhook payload: ``text`` is what notifications and old clients show,
    ``blocks`` the formatted message."""
    mark = ":red_circle:" if message.state == "firing" else ":white_check_mark:"
    text = f"{mark} {message.title}: {message.summary}"
    fields = [
        {"type": "mrkdwn", "text": f"*State*\n{message.state}"},
        {"type": "mrkdwn", "text": f"*Severity*\n{message.severity}"},
        {"type": "mrkdwn", "text": f"*Value*\n{_number(message.value)}"},
        {"type": "mrkdwn", "text": f"*Threshold*\n{_number(message.threshold)}"},
    ]
    blocks: list[dict[str, Any]] = [
        # Slack limits a header to 150 characters.
        {"type": "header", "text": _plain(message.title[:150])},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{mark} {message.summary}"}},
        {"type": "section", "fields": fields},
    ]
    context = [f"`{k}={v}`" for k, v in sorted(message.labels.items())]
    when = message.resolved_at if message.state == "resolved" else message.started_at
    if when is not None:
        context.append(f"{message.state} at {when.isoformat(timespec='seconds')}")
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " ".join(context)}]})
    if message.url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in Keel"},
                        "url": message.url,
                    }
                ],
            }
        )
    payload: dict[str, Any] = {"text": text, "blocks": blocks}
    if username:
        payload["username"] = username
    return payload


class SlackNotifier:
    def __init__(self, url: str, username: str | None) -> None:
        self.url = url
        self.username = username

    async def send(self, message: AlertMessage, *, timeout: float) -> None:
        await _post_json(self.url, slack_payload(message, self.username), {}, timeout)


def email_text(message: AlertMessage) -> str:
    lines = [
        message.summary,
        "",
        f"alert:     {message.alert} ({message.kind})",
        f"state:     {message.state}",
        f"severity:  {message.severity}",
        f"value:     {_number(message.value)}",
        f"threshold: {_number(message.threshold)}",
    ]
    lines += [f"{key}: {value}" for key, value in sorted(message.labels.items())]
    if message.started_at is not None:
        lines.append(f"started:   {message.started_at.isoformat(timespec='seconds')}")
    if message.resolved_at is not None:
        lines.append(f"resolved:  {message.resolved_at.isoformat(timespec='seconds')}")
    if message.url:
        lines += ["", message.url]
    return "\n".join(lines) + "\n"


class EmailNotifier:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        to: list[str],
        starttls: bool,
        use_ssl: bool,
        username: str | None,
        password: str | None,
    ) -> None:
        self.host, self.port, self.sender, self.to = host, port, sender, to
        self.starttls, self.use_ssl = starttls, use_ssl
        self.username, self.password = username, password

    async def send(self, message: AlertMessage, *, timeout: float) -> None:
        await asyncio.to_thread(self._send, message, timeout)

    def _send(self, message: AlertMessage, timeout: float) -> None:
        email = EmailMessage()
        email["Subject"] = f"{message.title}: {message.summary}"[:250]
        email["From"] = self.sender
        email["To"] = ", ".join(self.to)
        email.set_content(email_text(message))
        context = ssl.create_default_context()
        smtp: smtplib.SMTP = (
            smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=context)
            if self.use_ssl
            else smtplib.SMTP(self.host, self.port, timeout=timeout)
        )
        with smtp:
            if self.starttls and not self.use_ssl:
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(email)


@notifier("webhook")
def webhook(url: HttpUrl, headers: dict[str, str] | None = None) -> Notifier:
    """POST the alert as JSON to ``url`` (``headers``: e.g. an Authorization header)."""
    return WebhookNotifier(url, dict(headers or {}))


@notifier("slack")
def slack(url: HttpUrl, username: str | None = None) -> Notifier:
    """POST a Slack-compatible message to an incoming-webhook ``url``."""
    return SlackNotifier(url, username)


HttpUrl = Annotated[str, Field(pattern=r"^https?://")]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


@notifier("email")
def email(
    host: str,
    to: Annotated[list[str], BeforeValidator(_one_or_many), Field(min_length=1)],
    sender: Annotated[str, Field(alias="from", pattern=r"@")],
    port: Annotated[int, Field(ge=1, le=65535)] = 587,
    starttls: bool = True,
    ssl: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> Notifier:
    """Send a plain-text mail through ``host`` (STARTTLS on 587 by default; ``ssl`` for
    SMTPS on 465); ``password`` as ``${SMTP_PASSWORD}`` keeps it out of keel.yaml."""
    return EmailNotifier(host, port, sender, list(to), starttls, ssl, username, password)
