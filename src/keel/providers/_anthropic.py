"""The ``anthropic`` provider: OpenAI chat requests translated to the Messages API and
its answers (whole or streamed) translated back to OpenAI's chat format.

Translation choices worth knowing:
- ``system``/``developer`` messages, wherever they are, become the top-level ``system``.
- ``role: tool`` messages become ``tool_result`` blocks of a user turn; consecutive
  messages of one role are merged into one turn, as the Messages API expects.
- ``max_tokens`` is required upstream: ``max_completion_tokens``, else ``max_tokens``,
  else 4096.
- ``response_format`` (``json_object``/``json_schema``) is best effort: an instruction
  with the schema is added to ``system``; the model is asked, not constrained.
- OpenAI-only knobs with no Anthropic meaning (``frequency_penalty``, ``seed``,
  ``logprobs`` ...) are dropped; any other unknown field (``top_k``, ``thinking`` ...)
  is passed through, as are the deployment's ``params``.
- Usage: ``prompt_tokens`` counts every input token, cache reads and cache writes
  included, so totals mean what they mean at OpenAI; cache reads are also reported as
  ``cached_tokens``. Cache writes are metered at the plain input price.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from keel.core import InvalidRequest, JSONObject, ProviderError, ProviderSettings, Usage
from keel.providers._base import Deployment, ProviderResponse, StreamChunk
from keel.providers._event_stream import UpstreamEventStream
from keel.providers._http import UpstreamClient
from keel.providers._registry import provider
from keel.providers._tokens import count_tokens

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

_STREAM_HEADERS = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}
# Keys this module translates, and OpenAI-only keys that Anthropic would reject.
_TRANSLATED = frozenset(
    {
        "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
        "stop", "tools", "tool_choice", "parallel_tool_calls", "response_format", "user",
        "temperature", "top_p",
    }
)  # fmt: skip
_DROPPED = frozenset(
    {
        "n", "frequency_penalty", "presence_penalty", "seed", "logit_bias", "logprobs",
        "top_logprobs", "store", "metadata", "service_tier", "modalities", "audio",
        "prediction", "reasoning_effort", "web_search_options", "functions", "function_call",
    }
)  # fmt: skip
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_RETRYABLE_ERRORS = frozenset({"overloaded_error", "rate_limit_error", "api_error", "timeout_error"})


class AnthropicProvider:
    """Speaks the Anthropic Messages API; chat only."""

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._messages_url = f"{base_url}/messages" if base_url.endswith("/v1") else f"{base_url}/v1/messages"
        headers = {"anthropic-version": settings.api_version or DEFAULT_API_VERSION, **settings.headers}
        if settings.api_key:
            headers["x-api-key"] = settings.api_key
        self._client = UpstreamClient(
            provider=name, max_connections=settings.max_connections, headers=headers, secret=settings.api_key
        )

    async def chat(self, body: JSONObject, deployment: Deployment) -> ProviderResponse:
        request = to_messages_request(body, deployment)
        answer = await self._client.post_json(self._messages_url, request, deployment.timeouts)
        usage = _usage(answer.get("usage"))
        return ProviderResponse(to_chat_completion(answer, usage), usage)

    async def open_chat_stream(self, body: JSONObject, deployment: Deployment) -> AnthropicChunkStream:
        request = to_messages_request(body, deployment)
        request["stream"] = True
        options = body.get("stream_options")
        client_wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        resp = await self._client.open_stream(
            self._messages_url, request, deployment.timeouts, _STREAM_HEADERS
        )
        return AnthropicChunkStream(resp, self._client, deployment, client_wants_usage)

    async def completion(self, body: JSONObject, deployment: Deployment) -> ProviderResponse:
        raise InvalidRequest("anthropic does not support the completions API; use chat completions")

    async def open_completion_stream(self, body: JSONObject, deployment: Deployment) -> AnthropicChunkStream:
        raise InvalidRequest("anthropic does not support the completions API; use chat completions")

    async def embeddings(self, body: JSONObject, deployment: Deployment) -> ProviderResponse:
        raise InvalidRequest("anthropic does not support embeddings")

    def count_tokens(self, deployment: Deployment, text: str) -> int | None:
        return count_tokens(deployment, text)

    async def aclose(self) -> None:
        await self._client.aclose()


# -- request: OpenAI chat → Anthropic messages -------------------------------------------------


def to_messages_request(body: JSONObject, deployment: Deployment) -> JSONObject:
    """The Messages API request for an OpenAI chat completion request."""
    if (body.get("n") or 1) != 1:
        raise InvalidRequest("anthropic returns one choice per request: n must be 1", param="n")
    system: list[JSONObject] = []
    turns: list[JSONObject] = []
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty list", param="messages")
    for message in messages:
        if not isinstance(message, dict):
            raise InvalidRequest("messages must be objects", param="messages")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content")))
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"))
        elif role == "assistant":
            blocks = _assistant_blocks(message)
        elif role == "tool":
            role, blocks = "user", [_tool_result(message)]
        else:
            raise InvalidRequest(f"unsupported message role {role!r} for anthropic", param="messages")
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    out: JSONObject = {
        "model": deployment.model,
        "messages": turns,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS,
    }
    format_instruction = _response_format_instruction(body.get("response_format"))
    if format_instruction:
        system.append({"type": "text", "text": format_instruction})
    if system:
        out["system"] = system
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        out["tools"] = [_tool(tool) for tool in body["tools"]]
    tool_choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if tool_choice is not None:
        out["tool_choice"] = tool_choice
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    for key, value in body.items():
        if key not in _TRANSLATED and key not in _DROPPED:
            out[key] = value
    for key, value in deployment.params.items():
        out.setdefault(key, value)
    return out


def _text_blocks(content: Any) -> list[JSONObject]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [_text_part(part) for part in content if not _is_empty_text(part)]
    raise InvalidRequest("message content must be a string or a list of parts", param="messages")


def _text_part(part: Any) -> JSONObject:
    if isinstance(part, dict) and part.get("type") == "text":
        block: JSONObject = {"type": "text", "text": part.get("text", "")}
        if "cache_control" in part:
            block["cache_control"] = part["cache_control"]
        return block
    raise InvalidRequest("only text parts are allowed here", param="messages")


def _is_empty_text(part: Any) -> bool:
    # Anthropic rejects empty text blocks; an empty part carries nothing anyway.
    return isinstance(part, dict) and part.get("type") == "text" and not part.get("text")


def _user_blocks(content: Any) -> list[JSONObject]:
    if not isinstance(content, list):
        return _text_blocks(content)
    blocks: list[JSONObject] = []
    for part in content:
        if _is_empty_text(part):
            continue
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append(_text_part(part))
        elif kind == "image_url":
            blocks.append(_image_block(part))
        elif isinstance(part, dict):
            blocks.append(part)  # an Anthropic-native block (document, ...): passed through
        else:
            raise InvalidRequest("content parts must be objects", param="messages")
    return blocks


def _image_block(part: JSONObject) -> JSONObject:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise InvalidRequest("image_url.url must be a string", param="messages")
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if encoding != "base64" or not data:
            raise InvalidRequest("image data URLs must be base64-encoded", param="messages")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _assistant_blocks(message: JSONObject) -> list[JSONObject]:
    content = message.get("content")
    blocks = _text_blocks(content) if not isinstance(content, list) else _user_blocks(content)
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            tool_input = orjson.loads(arguments) if isinstance(arguments, str) else arguments
        except orjson.JSONDecodeError:
            raise InvalidRequest("tool_calls[].function.arguments must be JSON", param="messages") from None
        blocks.append(
            {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": tool_input}
        )
    return blocks


def _tool_result(message: JSONObject) -> JSONObject:
    content = message.get("content")
    block: JSONObject = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
    if isinstance(content, list):
        block["content"] = [_text_part(part) for part in content if not _is_empty_text(part)]
    elif content:
        block["content"] = content
    return block


def _tool(tool: Any) -> JSONObject:
    if not isinstance(tool, dict):
        raise InvalidRequest("tools must be objects", param="tools")
    if tool.get("type") != "function":
        return tool  # an Anthropic-native tool (web_search, bash ...): passed through
    function = tool.get("function") or {}
    out: JSONObject = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any, parallel_tool_calls: Any) -> JSONObject | None:
    out: JSONObject | None
    if choice is None:
        out = None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise InvalidRequest("unsupported tool_choice for anthropic", param="tool_choice")
    if parallel_tool_calls is False:
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out


def _response_format_instruction(response_format: Any) -> str | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return "Respond with a single JSON object and nothing else."
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = orjson.dumps(spec.get("schema", {})).decode()
        return (
            f"Respond with a single JSON object that conforms to this JSON schema, and nothing else: {schema}"
        )
    return None


# -- response: Anthropic message → OpenAI chat completion --------------------------------------


def to_chat_completion(message: JSONObject, usage: Usage | None) -> JSONObject:
    """The OpenAI ``chat.completion`` for a Messages API answer."""
    texts: list[str] = []
    thinking: list[str] = []
    tool_calls: list[JSONObject] = []
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input")).decode(),
                    },
                }
            )
        elif kind == "thinking":
            thinking.append(block.get("thinking", ""))
    reply: JSONObject = {"role": "assistant", "content": "".join(texts) if texts or not tool_calls else None}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    if thinking:
        reply["reasoning_content"] = "".join(thinking)
    out: JSONObject = {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": _FINISH_REASONS.get(message.get("stop_reason") or "end_turn", "stop"),
            }
        ],
    }
    if usage is not None:
        out["usage"] = usage.to_openai()
    return out


def _usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict) or not usage:
        return None
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0) + cache_read + cache_write,
        cached_input_tokens=cache_read,
        output_tokens=int(usage.get("output_tokens") or 0),
    )


# -- stream: Anthropic events → OpenAI chat.completion.chunk ------------------------------------


class AnthropicChunkStream(UpstreamEventStream):
    """OpenAI chunks translated from one Messages API event stream.

    Yields a role chunk, content and tool-call deltas, a chunk with ``finish_reason``
    and, last, a usage-only chunk (``choices: []``) that the gateway forwards only when
    ``client_wants_usage``. ``usage`` is set once upstream reported it.
    """

    __slots__ = ("_created", "_id", "_input", "_model", "_tool_index")

    _cut_text = "message_stop"

    def _start(self, deployment: Deployment) -> None:
        self._id = ""
        self._model = deployment.model
        self._created = int(time.time())
        self._input: JSONObject = {}
        # Anthropic numbers content blocks; OpenAI numbers tool calls: block → call index.
        self._tool_index: dict[int, int] = {}

    def _translate(self, event: str, data: bytes) -> StreamChunk | None:
        if event == "ping":
            return None
        try:
            obj: JSONObject = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise self._not_json(data, "an event") from None
        kind = obj.get("type", event)
        if kind == "content_block_delta":
            return self._delta(obj)
        if kind == "content_block_start":
            block = obj.get("content_block") or {}
            if block.get("type") != "tool_use":
                text = block.get("text") if block.get("type") == "text" else None
                return self._chunk({"content": text}) if text else None
            index = self._tool_index[obj.get("index", 0)] = len(self._tool_index)
            call = {
                "index": index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return self._chunk({"tool_calls": [call]})
        if kind == "message_start":
            message = obj.get("message") or {}
            self._id = message.get("id") or ""
            self._model = message.get("model") or self._model
            self._input = message.get("usage") or {}
            self.usage = _usage(self._input)
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "message_delta":
            usage = obj.get("usage")
            if isinstance(usage, dict):
                # Later API versions repeat the (final) input counts here.
                self.usage = _usage({**self._input, **{k: v for k, v in usage.items() if v is not None}})
            stop_reason = (obj.get("delta") or {}).get("stop_reason") or "end_turn"
            return self._chunk({}, _FINISH_REASONS.get(stop_reason, "stop"))
        if kind == "message_stop":
            self._done = True
            if self.usage is None:
                return None
            return StreamChunk({**self._chunk_head(), "choices": [], "usage": self.usage.to_openai()})
        if kind == "error":
            self._abort()
            raise _stream_error(self._client, obj, data)
        return None  # content_block_stop, and event types added after this was written

    def _delta(self, obj: JSONObject) -> StreamChunk | None:
        delta = obj.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return self._chunk({"content": delta.get("text", "")})
        if kind == "input_json_delta":
            piece = delta.get("partial_json")
            if not piece:
                return None
            index = self._tool_index.get(obj.get("index", 0), 0)
            return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        if kind == "thinking_delta":
            return self._chunk({"reasoning_content": delta.get("thinking", "")})
        return None  # signature_delta, citations_delta ...

    def _chunk_head(self) -> JSONObject:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
        }

    def _chunk(self, delta: JSONObject, finish_reason: str | None = None) -> StreamChunk:
        chunk = self._chunk_head()
        chunk["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        return StreamChunk(chunk)


def _stream_error(client: UpstreamClient, obj: JSONObject, data: bytes) -> ProviderError:
    error = obj.get("error") or {}
    error_type = str(error.get("type") or "api_error")
    message = client.scrub_text(str(error.get("message") or error_type))
    return ProviderError(
        f"{client.provider} stream failed: {message}",
        body=client.scrub(data),
        retryable=error_type in _RETRYABLE_ERRORS,
        kind="overloaded" if error_type == "overloaded_error" else "stream_error",
    )


@provider("anthropic")
def anthropic_provider(name: str, settings: ProviderSettings, home: Path) -> AnthropicProvider:
    return AnthropicProvider(name, settings)
