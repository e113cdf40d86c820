"""``UpstreamEventStream``: the plumbing shared by the HTTP providers' chunk streams.

It reads an upstream ``text/event-stream`` body piece by piece, parses it into events,
maps transport failures to Keel errors, and closes the connection: cleanly when the
stream is complete (so it can go back to the pool), abruptly when it is cut or
cancelled (so upstream stops generating). Subclasses only translate events to chunks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Self

import aiohttp

from keel.core import ProviderError, Usage
from keel.providers._base import Deployment, StreamChunk
from keel.providers._http import UpstreamClient, finish_stream
from keel.providers._sse import SSEEvent, SSEParser


class UpstreamEventStream(ABC):
    """Chunks translated from one upstream event stream; ends once ``_done`` is set.

    ``client_wants_usage`` says whether the client asked for the usage-only chunk
    (``choices: []``); the gateway drops that chunk when it did not. ``usage`` is set
    once upstream reported it.
    """

    __slots__ = (
        "_client",
        "_closed",
        "_deployment",
        "_done",
        "_events",
        "_next",
        "_parser",
        "_resp",
        "client_wants_usage",
        "usage",
    )

    # Completes "<provider> stream ended before ..." when the body ends too early.
    _cut_text: ClassVar[str] = "it was complete"

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        client: UpstreamClient,
        deployment: Deployment,
        client_wants_usage: bool,
    ) -> None:
        self._resp = resp
        self._client = client
        self._deployment = deployment
        self._parser = SSEParser()
        self._events: list[SSEEvent] = []
        self._next = 0
        self._done = False
        self._closed = False
        self.client_wants_usage = client_wants_usage
        self.usage: Usage | None = None
        self._start(deployment)

    @abstractmethod
    def _start(self, deployment: Deployment) -> None:
        """Sets up the subclass's translation state (called once, by ``__init__``)."""

    @abstractmethod
    def _translate(self, event: str, data: bytes) -> StreamChunk | None:
        """The chunk for one upstream event, or None for an event with nothing to send.
        Sets ``_done`` on upstream's end marker; clears ``_events`` to ignore the rest."""

    def _complete_at_eof(self) -> bool:
        """Whether a body that ended without the end marker still carried a whole answer."""
        return False

    def __aiter__(self) -> Self:
        return self

    def buffered(self) -> bool:
        return self._next < len(self._events)

    async def __anext__(self) -> StreamChunk:
        while True:
            while self._next < len(self._events):
                event, data = self._events[self._next]
                self._next += 1
                chunk = self._translate(event, data)
                if chunk is not None:
                    return chunk
            if self._done:
                await self._finish()
                raise StopAsyncIteration
            await self._read()

    async def _read(self) -> None:
        try:
            piece = await self._resp.content.readany()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._abort()
            raise self._client.stream_error(exc, self._deployment.timeouts) from exc
        self._next = 0
        if piece:
            self._events = self._parser.feed(piece)
            return
        self._events = self._parser.flush()
        if self._events:
            return
        if self._complete_at_eof():
            self._done = True
            return
        self._abort()
        raise ProviderError(
            f"{self._client.provider} stream ended before {self._cut_text}",
            retryable=False,
            kind="stream_cut",
        )

    def _not_json(self, data: bytes, what: str) -> ProviderError:
        """Aborts the stream; the error for ``data`` (``what`` it is) not parsing as JSON."""
        self._abort()
        return ProviderError(
            f"{self._client.provider} streamed {what} that is not JSON",
            body=self._client.scrub(data),
            kind="bad_response",
        )

    async def _finish(self) -> None:
        if not self._closed:
            self._closed = True
            await finish_stream(self._resp, complete=True)

    def _abort(self) -> None:
        self._done = True
        self._events = []
        if not self._closed:
            self._closed = True
            self._resp.close()

    async def aclose(self) -> None:
        """Stop the stream; before upstream's end marker this closes the connection so
        upstream stops generating."""
        self._abort()
