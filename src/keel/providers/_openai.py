"""The ``openai`` provider: any OpenAI-compatible endpoint (OpenAI, vLLM, TGI, Ollama,
llama.cpp ...). Bodies go upstream as the client sent them (model and deployment params
set), and streamed chunks come back with their exact upstream bytes in ``raw`` so the
gateway can forward them without re-serialising.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from keel.core import JSONObject, ProviderError, ProviderSettings, Usage
from keel.providers._base import Deployment, ProviderResponse, StreamChunk, with_model
from keel.providers._event_stream import UpstreamEventStream
from keel.providers._http import UpstreamClient
from keel.providers._registry import provider
from keel.providers._tokens import count_tokens

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Asked of upstream for every stream: compression would hold chunks back in its buffer.
_STREAM_HEADERS = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}


class OpenAIProvider:
    """Speaks OpenAI's HTTP API to ``settings.base_url``."""

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._chat_url = f"{base_url}/chat/completions"
        self._completions_url = f"{base_url}/completions"
        self._embeddings_url = f"{base_url}/embeddings"
        headers = dict(settings.headers)
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        self._client = UpstreamClient(
            provider=name, max_connections=settings.max_connections, headers=headers, secret=settings.api_key
        )

    async def chat(self, body: JSONObject, deployment: Deployment) -> ProviderResponse:
        return await self._call(self._chat_url, body, deployment)

    async def completion(self, body: JSONObject, deployment: Deployment) -> ProviderResponse:
        return await self._call(self._completions_url, body, deployment)

    async def embeddings(self, body: JSONObject, deployment: Deployment) -> ProviderResponse:
        return await self._call(self._embeddings_url, body, deployment)

    async def open_chat_stream(self, body: JSONObject, deployment: Deployment) -> OpenAIChunkStream:
        return await self._open_stream(self._chat_url, body, deployment)

    async def open_completion_stream(self, body: JSONObject, deployment: Deployment) -> OpenAIChunkStream:
        return await self._open_stream(self._completions_url, body, deployment)

    def count_tokens(self, deployment: Deployment, text: str) -> int | None:
        return count_tokens(deployment, text)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, url: str, body: JSONObject, deployment: Deployment) -> ProviderResponse:
        answer = await self._client.post_json(url, with_model(body, deployment), deployment.timeouts)
        usage = answer.get("usage")
        return ProviderResponse(answer, Usage.from_openai(usage) if isinstance(usage, dict) else None)

    async def _open_stream(self, url: str, body: JSONObject, deployment: Deployment) -> OpenAIChunkStream:
        upstream_body = with_model(body, deployment)
        upstream_body["stream"] = True
        options = body.get("stream_options")
        options = dict(options) if isinstance(options, dict) else {}
        client_wants_usage = bool(options.get("include_usage"))
        # Always asked for, so that the call can be metered from upstream's own count.
        options["include_usage"] = True
        upstream_body["stream_options"] = options
        resp = await self._client.open_stream(url, upstream_body, deployment.timeouts, _STREAM_HEADERS)
        return OpenAIChunkStream(resp, self._client, deployment, client_wants_usage)


class OpenAIChunkStream(UpstreamEventStream):
    """Chunks of one upstream stream, until ``data: [DONE]``, each with its upstream
    bytes in ``raw``. Keel always asks upstream for the usage-only chunk; see
    ``client_wants_usage``."""

    __slots__ = ("_finished_choice",)

    def _start(self, deployment: Deployment) -> None:
        self._finished_choice = False

    def _complete_at_eof(self) -> bool:
        # Some servers (older llama.cpp, Ollama) end a complete stream without [DONE];
        # without a finish_reason it was cut.
        return self._finished_choice

    def _translate(self, event: str, data: bytes) -> StreamChunk | None:
        if data == b"[DONE]":
            self._done = True
            self._events = []
            return None
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise self._not_json(data, "a chunk") from None
        usage = obj.get("usage")
        if usage:
            self.usage = Usage.from_openai(usage)
        error = obj.get("error")
        if error:
            # vLLM and OpenAI report a failure after the 200 as an error object in the stream.
            message = error.get("message") if isinstance(error, dict) else str(error)
            self._abort()
            raise ProviderError(
                f"{self._client.provider} stream failed: {self._client.scrub_text(str(message))}",
                body=self._client.scrub(data),
                kind="stream_error",
            )
        if not self._finished_choice:
            for choice in obj.get("choices") or ():
                if choice.get("finish_reason"):
                    self._finished_choice = True
        return StreamChunk(obj, data)


@provider("openai")
def openai_provider(name: str, settings: ProviderSettings, home: Path) -> OpenAIProvider:
    return OpenAIProvider(name, settings)
