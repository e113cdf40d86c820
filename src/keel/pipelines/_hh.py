"""The HH-RLHF text format (Anthropic's ``hh-rlhf``) and TRL's conversational format.

An HH row is ``{"chosen": TEXT, "rejected": TEXT}``, each TEXT a whole conversation:
``"\\n\\nHuman: question\\n\\nAssistant: answer"``, turns alternating, both texts sharing
everything up to their last ``"\\n\\nAssistant:"``. TRL's conversational preference row
is ``{"prompt": [messages], "chosen": [assistant message], "rejected": [assistant
message]}``. HH has no system role: a system message is written at the start of the
first Human turn.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from keel.core import InvalidRequest

HUMAN = "\n\nHuman: "
ASSISTANT = "\n\nAssistant: "
_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")
_ROLES = {"Human": "user", "Assistant": "assistant"}

Message = dict[str, str]


def conversation_text(messages: Sequence[Message]) -> str:
    """Chat messages as one HH text (a system message leads the first Human turn)."""
    out: list[str] = []
    system: list[str] = []
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "system":
            system.append(content)
        elif role == "user":
            out.append(HUMAN + "\n\n".join([*system, content]))
            system = []
        elif role == "assistant":
            out.append(ASSISTANT + content)
        else:
            raise InvalidRequest(f"the HH format has no {role!r} role")
    if system:
        out.append(HUMAN + "\n\n".join(system))
    return "".join(out)


def preference_to_hh(row: dict[str, Any]) -> dict[str, str]:
    prompt = conversation_text(row["prompt"])
    return {
        "chosen": prompt + ASSISTANT + row["chosen"][0]["content"],
        "rejected": prompt + ASSISTANT + row["rejected"][0]["content"],
    }


def parse_conversation(text: str) -> list[Message]:
    """One HH text as chat messages; raises ``InvalidRequest`` when it is not one."""
    if not text.startswith("\n\n"):
        # Some copies of the data set drop the leading blank line.
        text = "\n\n" + text
    parts = _TURN.split(text)
    if parts[0].strip():
        raise InvalidRequest("text before the first 'Human:' turn")
    messages: list[Message] = []
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": _ROLES[speaker], "content": content.strip()})
    if not messages:
        raise InvalidRequest("no 'Human:' or 'Assistant:' turn")
    return messages


def hh_to_preference(row: Any) -> dict[str, Any]:
    """An HH row as a TRL conversational preference row; raises ``InvalidRequest`` naming
    what is wrong with it."""
    if not isinstance(row, dict):
        raise InvalidRequest("not a JSON object")
    texts: dict[str, str] = {}
    for name in ("chosen", "rejected"):
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidRequest(f"{name!r} must be a non-empty string")
        texts[name] = value
    chosen = parse_conversation(texts["chosen"])
    rejected = parse_conversation(texts["rejected"])
    if chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        raise InvalidRequest("'chosen' and 'rejected' must each end with an 'Assistant:' turn")
    prompt = chosen[:-1]
    if rejected[:-1] != prompt:
        raise InvalidRequest("'chosen' and 'rejected' do not share the conversation before the last answer")
    if not prompt or prompt[-1]["role"] != "user":
        raise InvalidRequest("the conversation must have a 'Human:' turn before the last answer")
    if chosen[-1]["content"] == rejected[-1]["content"]:
        raise InvalidRequest("'chosen' and 'rejected' give the same answer")
    return {"prompt": prompt, "chosen": [chosen[-1]], "rejected": [rejected[-1]]}
