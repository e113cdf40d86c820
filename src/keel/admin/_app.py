"""The admin API application: one FastAPI app, mounted by the gateway at ``/admin``.

Each domain's routes live in their own module (``_access_api``, ``_spend_api``,
``_prompts_api``) as an ``APIRouter``; the services they use are set on ``app.state``
by the composition root (``keel.server``), so the routers never build anything.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from keel.admin import _access_api, _prompts_api, _reports_api, _spend_api
from keel.core import InvalidRequest, KeelError


def _error(exc: KeelError) -> Response:
    body = {"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}}
    return Response(orjson.dumps(body), status_code=exc.status, media_type="application/json")


async def _keel_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeelError)
    return _error(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods, in the same error format as everything else."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Unknown path: {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return Response(orjson.dumps(body), status_code=exc.status_code, media_type="application/json")


async def _validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 in OpenAI's error format, naming the first bad field."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if p != "body")
    return _error(InvalidRequest(f"Invalid value for '{loc}': {first['msg']}.", param=loc))


def create_admin_app(**services: object) -> FastAPI:
    """The admin app; ``services`` (``engine``, ``keys``, ``audit``, ``spend`` ...) become
    attributes of ``app.state``."""
    app = FastAPI(
        title="Keel admin API",
        version="1",
        description="Teams, keys, budgets, prices, prompts and usage. Authenticate with "
        "`Authorization: Bearer <key>` (an admin, team admin or member key).",
    )
    app.add_exception_handler(KeelError, _keel_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for name, service in services.items():
        setattr(app.state, name, service)
    for module in (_access_api, _spend_api, _prompts_api, _reports_api):
        app.include_router(module.router)
    return app
