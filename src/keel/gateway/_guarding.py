"""Guardrails in the request pipeline: which policy applies, and what it does to a call.

The calling key's guard policy applies (its own, else its team's), else the route's
``guard_policy``, else ``guards.default_policy``, else none: a call without a policy
pays an attribute check and a dictionary lookup. With one, the input scanners run before the
cache lookup and the reservation (a blocked request costs nothing; a redacted request
is what is cached and sent), and the output scanners on the answer:

- non-streamed: the whole answer, then the request's placeholders are put back (with
  ``restore``);
- streamed: each choice's text goes through a ``StreamGuard`` (released a bounded
  number of characters late, so that a value cut across chunks is seen whole), and the
  released text is sent in re-written chunks. A stream without output scanning keeps
  forwarding upstream bytes untouched.

A blocked answer follows OpenAI's content filter: HTTP 200 with ``finish_reason:
"content_filter"`` and the content withheld (a stream ends with such a chunk), plus a
``keel_guard`` object naming the policy. The request log gets every verdict and, when
a policy redacts, the redacted bodies only.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keel.access import Principal
from keel.core import GuardSettings, InvalidRequest, JSONObject, NotFound, RouteSettings
from keel.guards import (
    GuardResult,
    Policy,
    PolicyOutcome,
    ScanContext,
    StreamGuard,
    builtin_policy,
    new_canary,
    plant_canary,
)
from keel.telemetry import GatewayMetrics

CONTENT_FILTER = "content_filter"


class GuardPolicies:
    """The policies of ``guards:``, built once, and the one each route uses."""

    def __init__(
        self,
        policies: Mapping[str, Policy],
        settings: GuardSettings,
        routes: Mapping[str, RouteSettings],
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.policies = dict(policies)
        self.default = settings.default_policy
        self._by_route: dict[str, Policy] = {}
        for name, route in routes.items():
            chosen = route.guard_policy or self.default
            if chosen is not None:
                self._by_route[name] = self.policies[chosen]
        self._metrics = metrics
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._decisions: dict[tuple[str, str, str], Any] = {}
        self._builtin: Policy | None = None

    @property
    def guards_routes(self) -> bool:
        """Whether any route has a policy (if not, the data plane skips guards entirely)."""
        return bool(self._by_route)

    def for_route(self, route: str) -> Policy | None:
        return self._by_route.get(route)

    def for_call(self, route: str, principal: Principal | None) -> Policy | None:
        """The policy of a call: the key's (or its team's), else the route's. A key whose
        policy this gateway does not define is refused rather than let through unguarded."""
        name = principal.guard_policy if principal is not None else None
        if name is None:
            return self._by_route.get(route)
        policy = self.policies.get(name)
        if policy is None:
            raise InvalidRequest(
                f"This key's guard policy '{name}' is not configured on this gateway "
                "(guards.policies in keel.yaml); ask an administrator to fix the key or the configuration."
            )
        return policy

    def warm_up(self) -> None:
        """Load what scanners load lazily (the classifier's model): call in a thread."""
        for policy in self.policies.values():
            policy.warm_up()

    async def resolve(self, name: str | None) -> Policy:
        """The policy ``name``; with no name the default policy, else Keel's built-in one."""
        if name is not None:
            policy = self.policies.get(name)
            if policy is None:
                known = ", ".join(sorted(self.policies)) or "none are configured"
                raise NotFound(f"Unknown guard policy '{name}' (known: {known}).", param="policy")
            return policy
        if self.default is not None:
            return self.policies[self.default]
        if self._builtin is None:
            self._builtin = await asyncio.to_thread(builtin_policy)
        return self._builtin

    def count(self, policy: str, results: Iterable[GuardResult]) -> None:
        """``keel_guard_verdicts_total`` for each verdict."""
        if self._metrics is None:
            return
        for result in results:
            key = (policy, result.scanner, result.verdict)
            child = self._counters.get(key)
            if child is None:
                child = self._counters[key] = self._metrics.guard_verdicts.labels(*key)
            child.inc()

    def count_decision(self, policy: str, stage: str, decision: str) -> None:
        """``keel_guard_decisions_total`` for what the policy did with a request or an answer."""
        if self._metrics is None:
            return
        key = (policy, stage, decision)
        child = self._decisions.get(key)
        if child is None:
            child = self._decisions[key] = self._metrics.guard_decisions.labels(*key)
        child.inc()


@dataclass(slots=True)
class GuardedCall:
    """One request's guard state: its policy, the input outcome and what the output
    scanners need (the canary planted in the system prompt, the request's placeholders)."""

    policy: Policy
    input: PolicyOutcome
    context: ScanContext
    verdicts: dict[str, object] = field(default_factory=dict)

    @property
    def scans_output(self) -> bool:
        """Whether answers go through the policy: it has output scanners, or it put
        placeholders in the request that the answer may repeat and must get back."""
        return bool(self.policy.output) or (self.policy.restore and bool(self.input.redactions))


async def guard_input(
    guards: GuardPolicies, policy: Policy, body: JSONObject
) -> tuple[JSONObject, GuardedCall]:
    """The request body to send on (redacted if the policy redacts) and the call's state.
    A blocked request is left for the caller to refuse (``call.input.error()``)."""
    sent, outcome = await policy.guard_request_async(body, ScanContext(stage="input"))
    guards.count(policy.name, outcome.results)
    guards.count_decision(policy.name, "input", outcome.decision)
    context = ScanContext(stage="output", system_prompt=_system_prompt(body))
    call = GuardedCall(policy, outcome, context)
    call.verdicts["input"] = outcome.to_dict()
    return sent, call


def plant_request_canary(call: GuardedCall, body: JSONObject) -> JSONObject:
    """``body`` with a fresh canary token in its system prompt when the policy's output
    scanners look for one (``canary`` without a fixed token); else ``body`` itself.
    Done on the body sent upstream only: the cache key and the log stay free of it."""
    if not any(entry.name == "canary" and not entry.settings.get("token") for entry in call.policy.output):
        return body
    messages = body.get("messages")
    if not isinstance(messages, list):
        return body
    for i, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") in ("system", "developer"):
            content = message.get("content")
            if not isinstance(content, str):
                return body
            token = new_canary()
            call.context = ScanContext(stage="output", canary=token, system_prompt=call.context.system_prompt)
            planted = [*messages]
            planted[i] = {**message, "content": plant_canary(content, token)}
            return {**body, "messages": planted}
    return body


async def guard_answer(
    guards: GuardPolicies, call: GuardedCall, answer: JSONObject
) -> tuple[JSONObject, JSONObject, PolicyOutcome]:
    """A whole answer through the output policy: (for the client, for the log and the
    cache, the outcome). A blocked answer reaches the client content-filtered."""
    client, outcome = await call.policy.guard_response_async(answer, call.context, call.input.redactions)
    guards.count(call.policy.name, outcome.results)
    guards.count_decision(call.policy.name, "output", outcome.decision)
    call.verdicts["output"] = outcome.to_dict()
    logged = outcome.body if outcome.body is not None else answer
    if outcome.blocked:
        client = content_filtered(answer, outcome)
    return client, logged, outcome


def content_filtered(answer: Mapping[str, Any], outcome: PolicyOutcome) -> JSONObject:
    """``answer`` with every choice's content withheld and ``finish_reason:
    "content_filter"`` (OpenAI's convention), and what refused it under ``keel_guard``."""
    out: JSONObject = {key: value for key, value in answer.items() if key != "choices"}
    choices = []
    for choice in answer.get("choices") or ():
        filtered = {k: v for k, v in choice.items() if k not in ("message", "text", "logprobs")}
        if "message" in choice:
            filtered["message"] = {"role": "assistant", "content": None}
        else:
            filtered["text"] = ""
        filtered["finish_reason"] = CONTENT_FILTER
        choices.append(filtered)
    out["choices"] = choices
    out["keel_guard"] = guard_notice(outcome)
    return out


def guard_notice(outcome: PolicyOutcome) -> dict[str, Any]:
    return {"policy": outcome.policy, "decision": outcome.decision, "message": outcome.error().message}


class StreamFilter:
    """Output scanning of a streamed answer: one ``StreamGuard`` per choice; each
    upstream chunk becomes the chunk to send now (its text replaced by what the guard
    releases), or nothing while the text is held back."""

    def __init__(self, guards: GuardPolicies, call: GuardedCall, *, chat: bool) -> None:
        self._registry = guards
        self._call = call
        self._chat = chat
        # Without output scanners only placeholders are put back, and the restorer holds
        # back a cut placeholder by itself: no window needed.
        self._holdback = None if call.policy.output else 0
        self._guards: dict[int, StreamGuard] = {}
        self._finished: set[int] = set()
        self._frame: JSONObject = {}
        self.blocked: PolicyOutcome | None = None

    async def filter(self, data: JSONObject) -> JSONObject | None:
        """The chunk to send for ``data`` (None: nothing now). After a block, the last
        chunk to send (``finish_reason: "content_filter"``); the caller stops there."""
        choices = data.get("choices")
        if not choices:
            return data  # a usage chunk
        if not self._frame:
            self._frame = {k: data[k] for k in ("id", "object", "created", "model") if k in data}
        out_choices = []
        for choice in choices:
            index = choice.get("index", 0)
            guard = self._guards.get(index)
            if guard is None:
                guard = self._guards[index] = self._call.policy.stream(
                    self._call.context, self._call.input.redactions, holdback=self._holdback
                )
            delta = choice.get("delta") if self._chat else None
            text = delta.get("content") if delta is not None else choice.get("text")
            released = ""
            if isinstance(text, str) and text:
                step = guard.feed(text)
                if step.blocked:
                    return self._stop(step.outcome)
                released = step.text
            if choice.get("finish_reason") is not None:
                step = await guard.finish_async()
                if step.blocked:
                    return self._stop(step.outcome)
                released += step.text
                self._finished.add(index)
            rewritten = self._rewrite(choice, delta, released)
            if rewritten is not None:
                out_choices.append(rewritten)
        if not out_choices and data.get("usage") is None:
            return None
        return {**data, "choices": out_choices}

    async def close(self) -> JSONObject | None:
        """At the end of the upstream stream: what guards still hold (an answer that
        ended without a finish chunk), or the content-filter chunk if a final check fails."""
        tail = []
        for index, guard in self._guards.items():
            if index in self._finished:
                continue
            step = await guard.finish_async()
            if step.blocked:
                return self._stop(step.outcome)
            if step.text:
                tail.append(self._text_choice(index, step.text))
        return {**self._frame, "choices": tail} if tail else None

    def verdicts(self) -> dict[str, object]:
        """The output verdicts of the stream for the request log (no found values)."""
        policy = self._call.policy
        results = [r for guard in self._guards.values() for r in guard.results]
        redacted = sorted({p for guard in self._guards.values() for p in guard.redactions})
        return {
            "policy": policy.name,
            "stage": "output",
            "decision": self._decision(results, redacted),
            "results": [r.to_dict() for r in results if r.verdict != "pass"],
            "scanners": sorted(entry.label for entry in policy.output),
            "redacted": redacted,
            "stream": True,
        }

    def logged_texts(self) -> dict[int, str]:
        """Per choice, what was released, redacted and with nothing restored."""
        return {index: guard.logged_text for index, guard in self._guards.items()}

    def count(self) -> None:
        name = self._call.policy.name
        for guard in self._guards.values():
            self._registry.count(name, guard.results)
        results = [r for guard in self._guards.values() for r in guard.results]
        redacted = any(guard.redactions for guard in self._guards.values())
        self._registry.count_decision(name, "output", self._decision(results, redacted))

    def _decision(self, results: list[GuardResult], redacted: object) -> str:
        if self.blocked is not None:
            return "block"
        if redacted:
            return "redact"
        if any(r.verdict != "pass" for r in results):
            return "flag"
        return "allow"

    def _stop(self, outcome: PolicyOutcome | None) -> JSONObject:
        self.blocked = outcome or self._call.input
        indexes = sorted(self._guards) or [0]
        choices: list[dict[str, Any]] = [
            {"index": i, "delta": {}, "finish_reason": CONTENT_FILTER}
            if self._chat
            else {"index": i, "text": "", "finish_reason": CONTENT_FILTER}
            for i in indexes
        ]
        return {**self._frame, "choices": choices, "keel_guard": guard_notice(self.blocked)}

    def _text_choice(self, index: int, text: str) -> dict[str, Any]:
        if self._chat:
            return {"index": index, "delta": {"content": text}, "finish_reason": None}
        return {"index": index, "text": text, "finish_reason": None}

    def _rewrite(self, choice: JSONObject, delta: JSONObject | None, released: str) -> JSONObject | None:
        """``choice`` carrying ``released`` instead of its text; None when it has
        nothing left to say (its text is held back and it has no other field)."""
        held = choice.get("finish_reason") is None
        if self._chat:
            delta = dict(delta or {})
            had_text = bool(delta.get("content"))
            if released:
                delta["content"] = released
            elif had_text:
                del delta["content"]
            if had_text and not delta and held:
                return None
            return {**choice, "delta": delta}
        had_text = bool(choice.get("text"))
        if had_text and not released and held:
            return None
        return {**choice, "text": released} if had_text or released else dict(choice)


def logged_stream_summary(summary: JSONObject, texts: Mapping[int, str]) -> JSONObject:
    """The request log's summary of a stream with each guarded choice's content replaced
    by what was released, redacted (``StreamTranscript.summary()`` holds the original)."""
    out = copy.deepcopy(summary)
    for choice in out.get("choices") or ():
        index = choice.get("index", 0)
        if index in texts:
            choice["content"] = texts[index]
    return out


def logged_answer(answer: JSONObject, texts: Mapping[int, str]) -> JSONObject:
    """An assembled streamed answer with each guarded choice's text replaced by what was
    released, redacted and unrestored (for the cache, like a non-streamed answer)."""
    out = copy.deepcopy(answer)
    for choice in out.get("choices") or ():
        text = texts.get(choice.get("index", 0))
        if text is None:
            continue
        message = choice.get("message")
        if isinstance(message, dict):
            message["content"] = text
        elif "text" in choice:
            choice["text"] = text
    return out


def _system_prompt(body: Mapping[str, Any]) -> str | None:
    """The system and developer messages' text, joined (None when there is none)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping) or message.get("role") not in ("system", "developer"):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)]
    return "\n".join(parts) if parts else None
