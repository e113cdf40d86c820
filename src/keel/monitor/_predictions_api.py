"""The prediction-log API (mounted at ``/v1/monitor``): any valid key may log.

    POST /predictions   {"predictions": [{model, id, features, prediction, confidence, at}, ...]}
    POST /labels        {"labels": [{model, id, label, at}, ...]}
    GET  /models/{model}/drift?window=1h&reference=7d
    GET  /models/{model}/performance?since=7d&step=1d

Errors are OpenAI-format JSON (``{"error": {message, type, param, code}}``).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from keel.access import Principal
from keel.core import AuthenticationError, InvalidRequest, KeelError
from keel.core._settings_alerts import parse_duration
from keel.monitor._predictions import log_labels, log_predictions, prediction_drift, prediction_performance
from keel.monitor._windows import WindowSpec

MAX_BODY = 32 * 1024 * 1024


class Authenticator(Protocol):
    async def authenticate_async(self, token: str) -> Principal: ...


def _error(exc: KeelError) -> Response:
    body = {"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}}
    return JSONResponse(body, status_code=exc.status)


async def _who(request: Request) -> Principal | None:
    keys: Authenticator | None = request.app.state.keys
    if keys is None:
        return None
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationError("Missing Authorization header: send 'Authorization: Bearer <key>'.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Malformed Authorization header: expected 'Bearer <key>'.")
    return await keys.authenticate_async(token.strip())


async def _items(request: Request, field: str) -> list[Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidRequest(f"request body over {MAX_BODY // (1024 * 1024)} MiB")
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidRequest("the body is not valid JSON") from None
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get(field), list):
        return list(body[field])
    raise InvalidRequest(f"expected a JSON list, or an object with a {field!r} list", param=field)


def _duration(request: Request, name: str, default: str) -> timedelta:
    value = request.query_params.get(name, default)
    try:
        return timedelta(seconds=float(parse_duration(value)))
    except (ValueError, TypeError):
        raise InvalidRequest(f"{name}: not a duration: {value!r} (write e.g. 1h, 7d)", param=name) from None


async def _predictions(request: Request) -> Response:
    who = await _who(request)
    items = await _items(request, "predictions")
    engine: Engine = request.app.state.engine
    count = await asyncio.to_thread(log_predictions, engine, items, team_id=who.team_id if who else None)
    return JSONResponse({"object": "list", "logged": count}, status_code=201)


async def _labels(request: Request) -> Response:
    await _who(request)
    items = await _items(request, "labels")
    updated, missing = await asyncio.to_thread(log_labels, request.app.state.engine, items)
    return JSONResponse({"updated": updated, "unknown_ids": missing})


async def _drift(request: Request) -> Response:
    await _who(request)
    model = request.path_params["model"]
    windows = WindowSpec(_duration(request, "window", "1h"), _duration(request, "reference", "7d"))
    results = await asyncio.to_thread(prediction_drift, request.app.state.engine, model, windows=windows)
    return JSONResponse({"model": model, "results": [r.to_dict() for r in results]})


async def _performance(request: Request) -> Response:
    await _who(request)
    model = request.path_params["model"]
    end = datetime.now(UTC)
    start = end - _duration(request, "since", "7d")
    step = _duration(request, "step", "1d")
    if step <= timedelta(0) or (end - start) / step > 10_000:
        raise InvalidRequest("step must be positive and at most 10,000 steps long", param="step")
    points = await asyncio.to_thread(
        prediction_performance, request.app.state.engine, model, start=start, end=end, step=step
    )
    return JSONResponse({"model": model, "points": [p.to_dict() for p in points]})


async def _keel_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeelError)
    return _error(exc)


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    message = (
        f"Method {request.method} is not allowed on {request.url.path}."
        if status == 405
        else f"Unknown path: {request.url.path}"
    )
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return JSONResponse(body, status_code=status)


def create_predictions_api(engine: Engine, keys: Authenticator | None) -> Starlette:
    """The ASGI app; ``keys`` None: no authentication (access control off)."""
    app = Starlette(
        routes=[
            Route("/predictions", _predictions, methods=["POST"]),
            Route("/labels", _labels, methods=["POST"]),
            Route("/models/{model:path}/drift", _drift, methods=["GET"]),
            Route("/models/{model:path}/performance", _performance, methods=["GET"]),
        ],
        exception_handlers={KeelError: _keel_error, 404: _not_found, 405: _not_found},
    )
    app.state.engine = engine
    app.state.keys = keys
    return app
