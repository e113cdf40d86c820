"""``POST /v1/guard/scan``: the guardrails without the proxy.

Body: ``{"text": "..."}`` or ``{"messages": [...]}`` (chat messages), an optional
``policy`` (default: ``guards.default_policy``, else Keel's built-in policy) and
``stage`` (``input``, the default, or ``output``). The answer has the decision, every
verdict (entity types and offsets, never found values) and the text or messages as
the policy passes them on (redacted under ``redact``). Authenticated like the other
data-plane calls when access control is on.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from keel.access import KeyRing
from keel.core import InvalidRequest, KeelError
from keel.gateway._asgi import Receive, Scope, Send, parse_json_object, read_body, send_error, send_json
from keel.gateway._credentials import client_key
from keel.gateway._guarding import GuardPolicies
from keel.guards import Policy, PolicyOutcome, ScanContext, ensure_text


class GuardScanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    messages: list[dict[str, Any]] | None = None
    policy: str | None = None
    stage: Literal["input", "output"] = "input"

    @model_validator(mode="after")
    def _one_input(self) -> GuardScanRequest:
        if (self.text is None) == (self.messages is None):
            raise ValueError("give exactly one of 'text' and 'messages'")
        return self


class GuardScanEndpoint:
    """An ASGI app for ``/v1/guard/scan``."""

    def __init__(self, guards: GuardPolicies, keys: KeyRing | None, max_body_bytes: int) -> None:
        self._guards = guards
        self._keys = keys
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if self._keys is not None:
                await self._keys.authenticate_async(client_key(scope))
            raw = await read_body(scope, receive, self._max_body)
            request = _parse(parse_json_object(raw))
            policy = await self._guards.resolve(request.policy)
            answer = await self._scan(policy, request)
        except KeelError as exc:
            await send_error(send, exc)
            return
        await send_json(send, 200, orjson.dumps(answer))

    async def _scan(self, policy: Policy, request: GuardScanRequest) -> dict[str, Any]:
        stage = request.stage
        context = ScanContext(stage=stage)
        answer: dict[str, Any]
        if request.text is not None:
            outcome = await policy.scan_async(request.text, stage=stage, context=context)
            answer = {"text": outcome.text}
        elif stage == "input":
            body, outcome = await policy.guard_request_async({"messages": request.messages}, context)
            answer = {"messages": body["messages"]}
        else:
            messages = request.messages or []
            found = [(i, m["content"]) for i, m in enumerate(messages) if isinstance(m.get("content"), str)]
            outcome = await policy.scan_texts_async(
                [(f"messages[{i}].content", text) for i, text in found], stage=stage, context=context
            )
            redacted = [dict(m) for m in messages]
            for (i, _), text in zip(found, outcome.texts, strict=True):
                redacted[i]["content"] = text
            answer = {"messages": redacted}
        self._guards.count(policy.name, outcome.results)
        return {**_verdicts(outcome), **answer}


def _parse(body: dict[str, Any]) -> GuardScanRequest:
    try:
        request = GuardScanRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        where = f"'{loc}': " if loc else ""
        raise InvalidRequest(f"Invalid scan request: {where}{first['msg']}.", param=loc or None) from None
    # Guards scan text: control characters mean binary data, refused rather than guessed at.
    if request.text is not None:
        ensure_text(request.text, what="text")
    for i, message in enumerate(request.messages or ()):
        for text in _message_texts(message.get("content")):
            ensure_text(text, what=f"messages[{i}].content")
    return request


def _message_texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []


def _verdicts(outcome: PolicyOutcome) -> dict[str, Any]:
    return {
        "policy": outcome.policy,
        "stage": outcome.stage,
        "decision": outcome.decision,
        "blocked": outcome.blocked,
        **({"message": outcome.error().message} if outcome.blocked else {}),
        "results": [r.to_dict() for r in outcome.results],
        "redacted": sorted(outcome.redactions),
    }
