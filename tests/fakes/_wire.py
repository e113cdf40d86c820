"""Wire-format helpers for the fake upstream: reply text, token counts, stream pieces, errors."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from aiohttp import web

DEFAULT_EMBEDDING_DIMENSIONS = 8

ErrorStyle = Literal["openai", "anthropic"]


def embedding_for(text: str, dimensions: int = DEFAULT_EMBEDDING_DIMENSIONS) -> list[float]:
    """The fake's deterministic unit vector for ``text`` (tests can compute expected values)."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend((b / 127.5) - 1.0 for b in digest)
        counter += 1
    vector = values[:dimensions]
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    # Rounded through float32 so the float and base64 encodings decode to the same numbers.
    return [struct.unpack("<f", struct.pack("<f", v / norm))[0] for v in vector]


def words(text: str) -> int:
    return len(text.split())


def pieces(text: str, count: int | None) -> list[str]:
    """Split ``text`` into stream pieces: one per word by default, else ``count`` even slices."""
    if count is None:
        return re.findall(r"\s*\S+(?:\s+$)?", text)
    count = max(count, 1)
    size, extra = divmod(len(text), count)
    pieces, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def truncate(text: str, max_tokens: Any) -> tuple[str, bool]:
    """Cut the reply to ``max_tokens`` words, as a real model would stop at its limit."""
    if not isinstance(max_tokens, int) or max_tokens <= 0:
        return text, False
    words = text.split()
    if len(words) <= max_tokens:
        return text, False
    return " ".join(words[:max_tokens]), True


def reply_text(override: str | None, last_user: str, as_json: bool) -> str:
    if override is not None:
        return override
    if as_json:
        return json.dumps({"echo": last_user})
    return "echo: " + last_user


def wants_json(body: Mapping[str, Any]) -> bool:
    response_format = body.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema")


def include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def tool_call_of(requested: Mapping[str, Any] | None, body: Mapping[str, Any]) -> dict[str, str] | None:
    """The tool call to answer with: only when one is requested and the request offers tools."""
    if requested is None or not body.get("tools"):
        return None
    arguments = requested.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {"name": str(requested["name"]), "arguments": arguments}


def openai_tool_call(tool_call: Mapping[str, str], choice: int) -> dict[str, Any]:
    return {
        "id": f"call_fake{choice}",
        "type": "function",
        "function": {"name": tool_call["name"], "arguments": tool_call["arguments"]},
    }


def openai_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def openai_content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def anthropic_content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_result":
            parts.append(anthropic_content_text(block.get("content")))
    return " ".join(parts)


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            # Both APIs use text parts with {"type": "text"}; Anthropic adds tool_result.
            return anthropic_content_text(content)
    return ""


def seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def json_response(payload: Any, retry_after: float | None, status: int = 200) -> web.Response:
    headers = {} if retry_after is None else {"Retry-After": seconds(retry_after)}
    return web.json_response(payload, status=status, headers=headers)


OPENAI_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_response(
    style: ErrorStyle, status: int, message: str | None, retry_after: float | None
) -> web.Response:
    """An error in the provider's own format (what SDKs parse into their exceptions)."""
    text = message or f"fake upstream error {status}"
    payload: dict[str, Any]
    if style == "anthropic":
        kind = ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        payload = {"type": "error", "error": {"type": kind, "message": text}}
    else:
        kind, code = OPENAI_ERROR_TYPES.get(status, ("server_error", None))
        payload = {"error": {"message": text, "type": kind, "param": None, "code": code}}
    return json_response(payload, retry_after, status)


def iter_sse_data(body: str) -> Iterator[str]:
    """The ``data:`` payloads of an SSE body, for tests that read raw streams."""
    for line in body.splitlines():
        if line.startswith("data: "):
            yield line[len("data: ") :]
