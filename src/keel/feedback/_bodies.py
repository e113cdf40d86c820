"""Reading what the request log holds for a chat request: the prompt messages the client
sent and the answer the model gave (``request_log.request_body`` / ``response_body``,
JSON text as logged; a stream's response is the gateway's summary with
``choices[].content``)."""

from __future__ import annotations

import json
from typing import Any

from keel.core import JSONObject

CHAT_ENDPOINT = "chat.completions"
CHAT_ROLES = frozenset({"system", "user", "assistant"})


def json_object(text: str | None) -> JSONObject | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def answer_text(response: JSONObject | None) -> str | None:
    """The first choice's text, or None (no choices, tool calls only, not text)."""
    if response is None:
        return None
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    choice = choices[0]
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else choice.get("content")
    text = _text(content)
    return text if text else None


def prompt_messages(request: JSONObject | None) -> list[dict[str, str]] | None:
    """The request's messages as plain ``{"role", "content"}`` text messages, or None when
    they cannot be (no messages, a named prompt not expanded in the log, a tool turn, an
    image part)."""
    if request is None:
        return None
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    if isinstance(request.get("prompt"), dict) or str(request.get("model", "")).startswith("prompt:"):
        # The log keeps a named prompt's reference, not its rendering: the messages here
        # are only the caller's history, not the whole prompt.
        return None
    out: list[dict[str, str]] = []
    for message in messages:
        if not isinstance(message, dict):
            return None
        role = message.get("role")
        if role == "developer":
            role = "system"
        if role not in CHAT_ROLES or message.get("tool_calls"):
            return None
        text = _text(message.get("content"))
        if text is None:
            return None
        out.append({"role": str(role), "content": text})
    return out


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if not isinstance(part, dict) or part.get("type", "text") != "text":
                return None
            text = part.get("text")
            if not isinstance(text, str):
                return None
            parts.append(text)
        return "".join(parts)
    return None
