"""What a request is cached under.

Two requests share an exact entry when everything that can change the answer is equal:
the body minus transport and bookkeeping fields, with ``model`` replaced by the route
name (an alias and its target are one route), inside one scope (a team, or the route's
shared space). The semantic cache relaxes only the conversation's text: requests whose
other fields are equal fall in one *partition*, and inside it embeddings are compared.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from keel.core import JSONObject

# Fields that change how an answer is delivered or recorded, never what it says. ``n``,
# ``seed``, ``temperature``... stay: they change the answer.
IGNORED_FIELDS = frozenset(
    {
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
    }
)


def _digest(scope: str, value: Any) -> str:
    hasher = hashlib.sha256(scope.encode())
    hasher.update(b"\x00")
    hasher.update(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    return hasher.hexdigest()


def cache_key(body: JSONObject, route: str, scope: str) -> str:
    """The exact-cache key: a sha256 (hex) of the normalised body, the route and the scope.

    Key order, the ``stream`` flag and ``user``/``metadata`` do not change it; any other
    field does. Raises ``orjson.JSONEncodeError`` for a body JSON cannot hold.
    """
    kept = {name: value for name, value in body.items() if name not in IGNORED_FIELDS}
    kept["model"] = route
    return _digest(scope, kept)


def semantic_text(body: JSONObject) -> str | None:
    """The text the semantic cache embeds: every message's text (chat) or the prompt
    (completions), one per line. None when the request has parts an embedding of its text
    would not see (images, audio, token prompts) or no text at all."""
    messages = body.get("messages")
    if isinstance(messages, list):
        lines: list[str] = []
        for message in messages:
            if not isinstance(message, dict):
                return None
            content = message.get("content")
            if isinstance(content, str):
                lines.append(content)
            elif isinstance(content, list):
                for part in content:
                    if not isinstance(part, dict) or part.get("type") != "text":
                        return None
                    lines.append(str(part.get("text", "")))
            elif content is not None:
                return None
        text = "\n".join(lines)
        return text if text.strip() else None
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt if prompt.strip() else None
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        text = "\n".join(prompt)
        return text if text.strip() else None
    return None


def semantic_partition(body: JSONObject, route: str, scope: str) -> str:
    """The semantic index a request is compared within: a hash of everything but the text.

    Messages keep their shape (roles, names, tool calls) without their content, so only
    conversations of the same shape and parameters can match each other.
    """
    kept = {name: value for name, value in body.items() if name not in IGNORED_FIELDS}
    kept["model"] = route
    messages = kept.get("messages")
    if isinstance(messages, list):
        kept["messages"] = [
            {name: value for name, value in message.items() if name != "content"}
            if isinstance(message, dict)
            else message
            for message in messages
        ]
    prompt = kept.get("prompt")
    if isinstance(prompt, str):
        kept["prompt"] = 1
    elif isinstance(prompt, list):
        kept["prompt"] = len(prompt)  # one choice per prompt: the count changes the answer
    return _digest(scope, kept)
