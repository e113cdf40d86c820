"""The upstream HTTP client shared by the HTTP providers, and how its failures read.

``UpstreamClient`` owns one pooled ``aiohttp.ClientSession`` per provider instance,
created on first use inside the running loop (a session is bound to its loop).

Every failure becomes a ``ProviderError`` whose ``retryable`` follows the official SDKs:
408, 409, 429 and 5xx statuses and connection failures may succeed on another attempt;
other 4xx are the request's fault. An upstream ``x-should-retry`` header overrides that.
Timeouts become ``UpstreamTimeout``. Messages never contain the API key: bodies are
scrubbed of it before they are kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

from keel.core import JSONObject, ProviderError, Timeouts, UpstreamTimeout

MAX_ERROR_BODY_CHARS = 2048
# Seconds a finished stream may take to deliver its chunked-encoding terminator before
# the connection is closed rather than returned to the pool.
STREAM_DRAIN_SECONDS = 1.0

_KIND_BY_STATUS = {
    400: "bad_request",
    401: "auth_error",
    403: "auth_error",
    404: "not_found",
    408: "request_timeout",
    409: "conflict",
    413: "bad_request",
    422: "bad_request",
    429: "rate_limited",
    529: "overloaded",
}


class UpstreamClient:
    """A lazily created pooled session plus the per-deployment aiohttp timeouts."""

    def __init__(
        self, *, provider: str, max_connections: int, headers: Mapping[str, str], secret: str | None
    ):
        self.provider = provider
        self._max_connections = max_connections
        self._headers = {"Content-Type": "application/json", **headers}
        self._secret = secret
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            session = self._session = self._new_session()
        return session

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            ttl_dns_cache=300,
            keepalive_timeout=30,
        )
        return aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            # A gateway must not carry cookies from one client's call into another's.
            cookie_jar=aiohttp.DummyCookieJar(),
            # Upstreams compress large bodies only when asked; streams ask for identity.
            auto_decompress=True,
            raise_for_status=False,
            # Reading proxy variables costs a lookup per request; off unless needed.
            trust_env=False,
        )

    def client_timeout(self, timeouts: Timeouts) -> aiohttp.ClientTimeout:
        """aiohttp's view of a deployment's timeouts, built once per distinct value.
        For a stream, ``open_stream`` swaps the socket read timeout for ``stream_idle``
        once the headers are in."""
        client_timeout = self._timeouts.get(timeouts)
        if client_timeout is None:
            client_timeout = self._timeouts[timeouts] = aiohttp.ClientTimeout(
                total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.read
            )
        return client_timeout

    async def post_json(self, url: str, body: JSONObject, timeouts: Timeouts) -> JSONObject:
        """POST ``body`` and return the decoded 2xx JSON answer, or raise."""
        try:
            async with self.session.post(
                url, data=orjson.dumps(body), timeout=self.client_timeout(timeouts), allow_redirects=False
            ) as resp:
                raw = await resp.read()
                if not 200 <= resp.status < 300:
                    raise self.status_error(resp.status, resp.headers, raw)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.exception_error(exc, timeouts) from exc
        try:
            answer: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ProviderError(
                f"{self.provider} answered with a body that is not JSON",
                upstream_status=resp.status,
                body=self.scrub(raw),
                kind="bad_response",
            ) from None
        if not isinstance(answer, dict):
            raise ProviderError(
                f"{self.provider} answered with JSON that is not an object", kind="bad_response"
            )
        return answer

    async def open_stream(
        self, url: str, body: JSONObject, timeouts: Timeouts, headers: Mapping[str, str]
    ) -> aiohttp.ClientResponse:
        """POST a streaming request; return the response once upstream accepted it (2xx,
        headers read). The caller owns the response and must close or release it."""
        try:
            resp = await self.session.post(
                url,
                data=orjson.dumps(body),
                headers=headers,
                timeout=self.client_timeout(timeouts),
                allow_redirects=False,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.exception_error(exc, timeouts) from exc
        if not 200 <= resp.status < 300:
            try:
                raw = await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                raw = b""
            finally:
                resp.release()
            raise self.status_error(resp.status, resp.headers, raw)
        connection = resp.connection
        if connection is not None and connection.protocol is not None:
            # aiohttp itself switches this timer for websockets; from here on the
            # socket read timeout is the silence allowed between two stream chunks.
            connection.protocol.read_timeout = timeouts.stream_idle
            connection.protocol.start_timeout()
        return resp

    def status_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> ProviderError:
        body = self.scrub(raw)
        detail = _error_message(raw)
        retryable = status in (408, 409, 429) or status >= 500
        should_retry = headers.get("x-should-retry")
        if should_retry == "true":
            retryable = True
        elif should_retry == "false":
            retryable = False
        kind = _KIND_BY_STATUS.get(status) or ("server_error" if status >= 500 else "bad_request")
        message = f"{self.provider} returned HTTP {status}"
        if detail:
            message = f"{message}: {self.scrub_text(detail)[:500]}"
        return ProviderError(
            message,
            upstream_status=status,
            body=body,
            retryable=retryable,
            retry_after=retry_after_seconds(headers),
            kind=kind,
        )

    def exception_error(self, exc: BaseException, timeouts: Timeouts) -> ProviderError:
        """A transport failure before any answer: connection errors may be retried."""
        if isinstance(exc, TimeoutError):  # includes aiohttp's ServerTimeoutError
            return UpstreamTimeout(f"{self.provider} did not answer in time ({_timeout_text(timeouts)})")
        if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.InvalidURL):
            return ProviderError(
                f"cannot reach {self.provider}: {self.scrub_text(str(exc))}", kind="config_error"
            )
        if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
            return ProviderError(
                f"connection to {self.provider} failed: {self.scrub_text(str(exc)) or type(exc).__name__}",
                retryable=True,
                kind="connection_error",
            )
        return ProviderError(f"{self.provider} request failed: {type(exc).__name__}", kind="connection_error")

    def stream_error(self, exc: BaseException, timeouts: Timeouts) -> ProviderError:
        """A failure after chunks flowed: never retried, the client has bytes already."""
        if isinstance(exc, TimeoutError):
            return UpstreamTimeout(
                f"{self.provider} stream timed out"
                f" (idle over {timeouts.stream_idle}s or total over {timeouts.total}s)"
            )
        return ProviderError(
            f"{self.provider} stream was cut: {self.scrub_text(str(exc)) or type(exc).__name__}",
            retryable=False,
            kind="stream_cut",
        )

    def scrub(self, raw: bytes) -> str:
        return self.scrub_text(raw[: MAX_ERROR_BODY_CHARS * 4].decode("utf-8", "replace"))[
            :MAX_ERROR_BODY_CHARS
        ]

    def scrub_text(self, text: str) -> str:
        if self._secret and self._secret in text:
            text = text.replace(self._secret, "***")
        return text

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


async def finish_stream(resp: aiohttp.ClientResponse, *, complete: bool) -> None:
    """Give a stream's connection back: to the pool when upstream finished (after
    reading the chunked terminator), else closed so that upstream sees the disconnect
    and stops generating."""
    if complete and not resp.content.at_eof():
        try:
            async with asyncio.timeout(STREAM_DRAIN_SECONDS):
                while await resp.content.readany():
                    pass
        except (aiohttp.ClientError, TimeoutError):
            complete = False
    if complete:
        resp.release()
    else:
        resp.close()


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` (seconds or HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(raw: bytes) -> str | None:
    """The human message of an OpenAI/Anthropic/vLLM/FastAPI style error body."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    error = obj.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    for key in ("message", "detail"):
        if isinstance(obj.get(key), str):
            return str(obj[key])
    return None


def _timeout_text(timeouts: Timeouts) -> str:
    return f"connect {timeouts.connect}s, read {timeouts.read}s, total {timeouts.total}s"
