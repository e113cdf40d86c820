"""The shapes of dataset rows, checked when a dataset is written and when it is loaded.

- SFT, TRL conversational: ``{"messages": [{"role", "content"}, ...]}`` ending with the
  assistant's (ideal) answer.
- Preference, TRL conversational: ``{"prompt": [messages], "chosen": [{"role":
  "assistant", "content"}], "rejected": [same]}``; the prompt ends with a user turn.
- Preference, HH-RLHF text: ``{"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...",
  "rejected": ...}``.
"""

from __future__ import annotations

from typing import Any, Literal

from keel.core import InvalidRequest

Kind = Literal["sft", "preference"]
Format = Literal["trl", "hh"]
KINDS: tuple[Kind, ...] = ("sft", "preference")
FORMATS: tuple[Format, ...] = ("trl", "hh")
ROLES = frozenset({"system", "user", "assistant"})


def check_messages(value: Any, where: str) -> None:
    if not isinstance(value, list) or not value:
        raise InvalidRequest(f"{where} must be a non-empty list of messages")
    for i, message in enumerate(value):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise InvalidRequest(f"{where}[{i}] must be an object with exactly 'role' and 'content'")
        if message["role"] not in ROLES:
            raise InvalidRequest(f"{where}[{i}].role must be one of system, user, assistant")
        if not isinstance(message["content"], str):
            raise InvalidRequest(f"{where}[{i}].content must be a string")


def check_row(row: Any, kind: Kind, fmt: Format) -> None:
    """Raise ``InvalidRequest`` unless ``row`` has the shape of ``kind`` in ``fmt``."""
    if not isinstance(row, dict):
        raise InvalidRequest("a row must be a JSON object")
    if kind == "sft":
        if set(row) != {"messages"}:
            raise InvalidRequest("an SFT row has exactly one field, 'messages'")
        check_messages(row["messages"], "messages")
        if row["messages"][-1]["role"] != "assistant":
            raise InvalidRequest("an SFT row's last message must be the assistant's answer")
        return
    if fmt == "hh":
        if set(row) != {"chosen", "rejected"} or not all(isinstance(v, str) for v in row.values()):
            raise InvalidRequest("an HH row has exactly 'chosen' and 'rejected', both strings")
        return
    if set(row) != {"prompt", "chosen", "rejected"}:
        raise InvalidRequest("a preference row has exactly 'prompt', 'chosen' and 'rejected'")
    check_messages(row["prompt"], "prompt")
    if row["prompt"][-1]["role"] != "user":
        raise InvalidRequest("a preference row's prompt must end with a user message")
    for name in ("chosen", "rejected"):
        check_messages(row[name], name)
        if len(row[name]) != 1 or row[name][0]["role"] != "assistant":
            raise InvalidRequest(f"{name!r} must be one assistant message")
