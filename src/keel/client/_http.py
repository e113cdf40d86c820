"""One GET of a JSON document from Keel's admin API, over the standard library.

``urllib.request`` keeps the client free of dependencies an application may not have.
Failures are sorted in two: Keel answered with a client error (a bad key, an unknown
prompt: ``KeelError`` subclasses with Keel's own message), or Keel could not be asked
(refused, timed out, 5xx, a body that is not JSON): ``PromptUnavailable``.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from typing import Any

from keel import __version__
from keel.core import (
    AuthenticationError,
    InvalidRequest,
    KeelError,
    NotFound,
    PermissionDenied,
    RateLimited,
)

USER_AGENT = f"keel-client/{__version__}"

_BY_STATUS: dict[int, type[KeelError]] = {
    400: InvalidRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    422: InvalidRequest,
}


class PromptUnavailable(KeelError):
    """Keel could not be asked (not running, unreachable, too slow, failing with a 5xx),
    and the client had no cached or fallback version to serve instead."""

    status = 503
    type = "service_unavailable"


def get_json(url: str, api_key: str, timeout: float) -> Any:
    request = urllib.request.Request(
        url,
        headers={
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        raise _answered(exc) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        # URLError wraps refused connections and DNS failures; a read timeout is a bare
        # TimeoutError (an OSError), a dropped connection an HTTPException.
        raise PromptUnavailable(f"Keel is unreachable at {url}: {_reason(exc)}") from None
    try:
        return json.loads(payload)
    except ValueError:
        raise PromptUnavailable(f"Keel answered {url} with a body that is not JSON.") from None


def _answered(exc: urllib.error.HTTPError) -> KeelError:
    message = _error_message(exc) or f"HTTP {exc.code}"
    if exc.code == 429:
        return RateLimited(f"Keel refused the request (429): {message}")
    kind = _BY_STATUS.get(exc.code)
    if kind is None:
        return PromptUnavailable(f"Keel failed to answer {exc.url} (HTTP {exc.code}): {message}")
    return kind(message)


def _error_message(exc: urllib.error.HTTPError) -> str | None:
    try:
        body = json.loads(exc.read())
    except (ValueError, OSError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else None


def _reason(exc: BaseException) -> str:
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timed out"
    text = str(reason).strip()
    return text or type(reason).__name__
