"""``/v1/feedback``: feedback on logged requests over HTTP (Starlette).

    POST /v1/feedback                 201 new, 200 the same id and body again (idempotent),
                                      409 the same id with another body, 404 unknown request
    GET  /v1/feedback?request_id=ID   {"object": "list", "data": [feedback, ...]}

Authenticated like the data plane (``Authorization: Bearer``, ``api-key`` or
``x-api-key``), answered in OpenAI's error format. The app answers both at its mount
point (``Mount("/v1/feedback", app)`` sees ``/``) and at the full path (``Route
("/v1/feedback", app)``, which avoids Starlette's redirect of the bare prefix).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from keel.core import AuthenticationError, InvalidRequest, KeelError, PayloadTooLarge
from keel.feedback._input import FeedbackInput
from keel.feedback._store import FeedbackStore, Giver, KeyHolder

MAX_BODY_BYTES = 1024 * 1024


class Authenticator(Protocol):
    """What the API needs of a key ring (``keel.access.KeyRing`` fits)."""

    async def authenticate_async(self, token: str) -> KeyHolder: ...


def error_response(exc: KeelError) -> Response:
    body = {"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}}
    return _json(body, exc.status)


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value, ensure_ascii=False), status_code=status, media_type="application/json")


def _token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("Malformed Authorization header: expected 'Bearer <key>'.")
        return token.strip()
    other = request.headers.get("api-key") or request.headers.get("x-api-key")
    if not other:
        raise AuthenticationError("Missing API key: send 'Authorization: Bearer <key>'.")
    return other


class _FeedbackApi:
    def __init__(self, store: FeedbackStore, keys: Authenticator | None, wait_for_log: float) -> None:
        self.store = store
        self.keys = keys
        self.wait_for_log = wait_for_log

    async def giver(self, request: Request) -> Giver:
        if self.keys is None:
            return Giver()
        return Giver.of(await self.keys.authenticate_async(_token(request)))

    async def collection(self, request: Request) -> Response:
        try:
            if request.method == "POST":
                return await self.post(request)
            return await self.list(request)
        except KeelError as exc:
            return error_response(exc)

    async def post(self, request: Request) -> Response:
        giver = await self.giver(request)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes.")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes.")
        try:
            body = json.loads(raw)
        except ValueError:
            raise InvalidRequest("The body is not valid JSON.") from None
        data = FeedbackInput.from_json(body)
        stored, created = await self.store.submit_async(giver, data, wait=self.wait_for_log)
        return _json(stored.to_json(), 201 if created else 200)

    async def list(self, request: Request) -> Response:
        giver = await self.giver(request)
        request_id = request.query_params.get("request_id")
        if not request_id:
            raise InvalidRequest("Give the request: ?request_id=ID.", param="request_id")
        items = await asyncio.to_thread(self.store.for_request, giver, request_id)
        return _json({"object": "list", "data": [item.to_json() for item in items]})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        message = f"Unknown path: {request.url.path}" if exc.status_code == 404 else str(exc.detail)
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return _json(body, exc.status_code)


def create_feedback_api(*, engine: Engine, keys: Authenticator | None, wait_for_log: float = 2.0) -> ASGIApp:
    """The feedback API. ``keys``: the key ring to authenticate with (None: no access
    control, as when ``access.enabled`` is off). ``wait_for_log``: how long feedback on
    a request not yet in the request log waits for it (the log is written in batches)."""
    api = _FeedbackApi(FeedbackStore(engine), keys, wait_for_log)
    methods = ["GET", "POST"]
    return Starlette(
        routes=[
            Route("/", api.collection, methods=methods),
            Route("/v1/feedback", api.collection, methods=methods),
        ],
        exception_handlers={HTTPException: _http_error},
    )
