"""Cached answers as streams, and streams as cacheable answers.

``sse_from_response`` replays a complete chat or text completion as the server-sent
events OpenAI's streaming API sends (same id, model and created; role first, then the
content, tool calls, the finish reason, the optional usage chunk, ``[DONE]``).
``StreamAssembler`` goes the other way: it rebuilds the complete response from a relayed
stream's chunks, so that a streamed answer can be cached.
"""

from __future__ import annotations

from typing import Any

import orjson

from keel.core import JSONObject

DONE = b"data: [DONE]\n\n"


def _event(chunk: JSONObject) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def sse_from_response(body: JSONObject, include_usage: bool) -> list[bytes]:
    """The SSE events streaming ``body`` (a ``chat.completion`` or ``text_completion``)."""
    is_chat = body.get("object") == "chat.completion" or any(
        "message" in choice for choice in body.get("choices") or ()
    )
    if not is_chat and body.get("object") not in ("text_completion", None):
        raise ValueError(f"cannot stream a {body.get('object')!r} response")
    base: JSONObject = {
        "id": body.get("id"),
        "object": "chat.completion.chunk" if is_chat else "text_completion",
        "created": body.get("created"),
        "model": body.get("model"),
    }
    if body.get("system_fingerprint") is not None:
        base["system_fingerprint"] = body["system_fingerprint"]
    if include_usage:
        base["usage"] = None  # as OpenAI: null on every chunk but the last

    events: list[bytes] = []

    def emit(choice: JSONObject) -> None:
        events.append(_event({**base, "choices": [choice]}))

    for position, choice in enumerate(body.get("choices") or ()):
        index = choice.get("index", position)
        if is_chat:
            _chat_choice_events(choice, index, emit)
        else:
            # One chunk per choice: text and finish reason together (the openai SDK's
            # Completion type, which it reads stream chunks into, requires a reason).
            emit(
                {
                    "text": choice.get("text") or "",
                    "index": index,
                    "logprobs": choice.get("logprobs"),
                    "finish_reason": choice.get("finish_reason"),
                }
            )
    if include_usage:
        events.append(_event({**base, "choices": [], "usage": body.get("usage")}))
    events.append(DONE)
    return events


def _chat_choice_events(choice: JSONObject, index: int, emit: Any) -> None:
    message: JSONObject = choice.get("message") or {}
    content = message.get("content")
    tool_calls = message.get("tool_calls") or []
    first: JSONObject = {
        "role": message.get("role", "assistant"),
        "content": "" if content is not None else None,
    }
    if "refusal" in message:
        first["refusal"] = None
    emit({"index": index, "delta": first, "logprobs": None, "finish_reason": None})
    if content:
        emit(
            {
                "index": index,
                "delta": {"content": content},
                "logprobs": choice.get("logprobs"),
                "finish_reason": None,
            }
        )
    elif choice.get("logprobs") is not None:
        emit({"index": index, "delta": {}, "logprobs": choice["logprobs"], "finish_reason": None})
    if message.get("refusal"):
        emit(
            {
                "index": index,
                "delta": {"refusal": message["refusal"]},
                "logprobs": None,
                "finish_reason": None,
            }
        )
    for position, call in enumerate(tool_calls):
        function = call.get("function") or {}
        delta_call: JSONObject = {
            "index": position,
            "id": call.get("id"),
            "type": call.get("type", "function"),
            "function": {"name": function.get("name"), "arguments": function.get("arguments", "")},
        }
        emit({"index": index, "delta": {"tool_calls": [delta_call]}, "logprobs": None, "finish_reason": None})
    emit({"index": index, "delta": {}, "logprobs": None, "finish_reason": choice.get("finish_reason")})


class _Choice:
    __slots__ = ("content", "finish_reason", "logprobs", "refusal", "role", "text", "tools")

    def __init__(self) -> None:
        self.role = "assistant"
        self.content: list[str] | None = None
        self.refusal: list[str] | None = None
        self.text: list[str] = []
        self.tools: dict[int, JSONObject] = {}
        self.logprobs: JSONObject | None = None
        self.finish_reason: str | None = None


class StreamAssembler:
    """Feed each chunk of a stream (parsed JSON); ``response()`` is the equivalent
    non-streamed response, or None when the stream failed or did not finish."""

    __slots__ = ("_base", "_chat", "_choices", "_failed", "_usage")

    def __init__(self) -> None:
        self._base: JSONObject | None = None
        self._choices: dict[int, _Choice] = {}
        self._chat = True
        self._usage: JSONObject | None = None
        self._failed = False

    def add(self, chunk: JSONObject) -> None:
        if "error" in chunk:
            self._failed = True
            return
        if self._base is None:
            self._chat = chunk.get("object") != "text_completion"
            self._base = {
                "id": chunk.get("id"),
                "object": "chat.completion" if self._chat else "text_completion",
                "created": chunk.get("created"),
                "model": chunk.get("model"),
            }
            if chunk.get("system_fingerprint") is not None:
                self._base["system_fingerprint"] = chunk["system_fingerprint"]
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for raw in chunk.get("choices") or ():
            choice = self._choices.setdefault(raw.get("index", 0), _Choice())
            if raw.get("finish_reason"):
                choice.finish_reason = raw["finish_reason"]
            logprobs = raw.get("logprobs")
            if logprobs is not None:
                _merge_logprobs(choice, logprobs)
            if not self._chat:
                choice.text.append(raw.get("text") or "")
                continue
            delta = raw.get("delta") or {}
            if delta.get("role"):
                choice.role = delta["role"]
            if isinstance(delta.get("content"), str):
                choice.content = [*(choice.content or ()), delta["content"]]
            if "refusal" in delta:  # OpenAI sends "refusal": null: kept, so the answer round-trips
                refusal = delta["refusal"]
                choice.refusal = [*(choice.refusal or ()), *((refusal,) if isinstance(refusal, str) else ())]
            for call in delta.get("tool_calls") or ():
                _merge_tool_call(choice.tools, call)

    def response(self) -> JSONObject | None:
        if self._failed or self._base is None or not self._choices:
            return None
        if any(choice.finish_reason is None for choice in self._choices.values()):
            return None
        choices = [self._finished(index, choice) for index, choice in sorted(self._choices.items())]
        body: JSONObject = {**self._base, "choices": choices}
        if self._usage is not None:
            body["usage"] = self._usage
        return body

    def _finished(self, index: int, choice: _Choice) -> JSONObject:
        if not self._chat:
            return {
                "text": "".join(choice.text),
                "index": index,
                "logprobs": choice.logprobs,
                "finish_reason": choice.finish_reason,
            }
        content = "".join(choice.content) if choice.content is not None else None
        if choice.tools and not content:
            content = None
        message: JSONObject = {"role": choice.role, "content": content}
        if choice.refusal is not None:
            message["refusal"] = "".join(choice.refusal) or None
        if choice.tools:
            message["tool_calls"] = [choice.tools[position] for position in sorted(choice.tools)]
        return {
            "index": index,
            "message": message,
            "logprobs": choice.logprobs,
            "finish_reason": choice.finish_reason,
        }


def _merge_tool_call(tools: dict[int, JSONObject], call: JSONObject) -> None:
    position = call.get("index", len(tools))
    known = tools.get(position)
    function = call.get("function") or {}
    if known is None:
        tools[position] = {
            "id": call.get("id"),
            "type": call.get("type") or "function",
            "function": {"name": function.get("name") or "", "arguments": function.get("arguments") or ""},
        }
        return
    if call.get("id"):
        known["id"] = call["id"]
    if function.get("name"):
        known["function"]["name"] += function["name"]
    if function.get("arguments"):
        known["function"]["arguments"] += function["arguments"]


def _merge_logprobs(choice: _Choice, logprobs: JSONObject) -> None:
    if choice.logprobs is None:
        choice.logprobs = {
            name: list(value) if isinstance(value, list) else value for name, value in logprobs.items()
        }
        return
    for name, value in logprobs.items():
        if isinstance(value, list):
            choice.logprobs[name] = [*(choice.logprobs.get(name) or ()), *value]
