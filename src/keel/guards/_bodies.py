"""Where the text is in OpenAI-format bodies: finding it and putting redacted text back.

A location is a path into the body (``("messages", 2, "content")``) and its display
form (``messages[2].content``) names it in verdicts.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

Path = tuple[str | int, ...]


def display(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def request_texts(body: Mapping[str, Any], roles: Collection[str]) -> list[tuple[Path, str]]:
    """The texts an input policy reads: chat message content (of ``roles``), a
    completion prompt, or embedding input."""
    found: list[tuple[Path, str]] = []
    messages = body.get("messages")
    if isinstance(messages, list):
        for i, message in enumerate(messages):
            if isinstance(message, Mapping) and message.get("role") in roles:
                found += _content(message.get("content"), ("messages", i, "content"))
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, str):
            found.append(((key,), value))
        elif isinstance(value, list):
            found += [((key, i), v) for i, v in enumerate(value) if isinstance(v, str)]
    return found


def system_prompt(body: Mapping[str, Any]) -> str | None:
    """The system (or developer) messages' text, joined; None when there is none."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    parts = [
        text
        for i, m in enumerate(messages)
        if isinstance(m, Mapping) and m.get("role") in ("system", "developer")
        for _, text in _content(m.get("content"), ("messages", i, "content"))
    ]
    return "\n".join(parts) if parts else None


def response_texts(body: Mapping[str, Any]) -> list[tuple[Path, str]]:
    """The texts an output policy reads: each choice's message content (and tool-call
    arguments) or completion text."""
    found: list[tuple[Path, str]] = []
    choices = body.get("choices")
    if not isinstance(choices, list):
        return found
    for i, choice in enumerate(choices):
        if not isinstance(choice, Mapping):
            continue
        message = choice.get("message")
        if isinstance(message, Mapping):
            found += _content(message.get("content"), ("choices", i, "message", "content"))
            calls = message.get("tool_calls")
            if isinstance(calls, list):
                for k, call in enumerate(calls):
                    function = call.get("function") if isinstance(call, Mapping) else None
                    if isinstance(function, Mapping) and isinstance(function.get("arguments"), str):
                        path: Path = ("choices", i, "message", "tool_calls", k, "function", "arguments")
                        found.append((path, function["arguments"]))
        if isinstance(choice.get("text"), str):
            found.append((("choices", i, "text"), choice["text"]))
    return found


def _content(content: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(content, str):
        yield path, content
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
                yield (*path, j, "text"), part["text"]


def with_texts(body: Mapping[str, Any], replacements: Sequence[tuple[Path, str]]) -> dict[str, Any]:
    """A copy of ``body`` with the text at each path replaced (``body`` is untouched)."""
    out: dict[str, Any] = copy.deepcopy(dict(body))
    for path, text in replacements:
        node: Any = out
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = text
    return out
