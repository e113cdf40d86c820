"""The gateway's ASGI application: data-plane routes plus health and metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from keel.core import KeelSettings
from keel.gateway._dispatch import Dispatcher
from keel.gateway._openai_api import CHAT, COMPLETIONS, EMBEDDINGS, OpenAIEndpoint
from keel.gateway._recorder import Recorder, RecordSink
from keel.gateway._routing import Router, build_router
from keel.providers import Provider
from keel.telemetry import CONTENT_TYPE, GatewayMetrics

ReadyCheck = Callable[[], Awaitable[bool]]
Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


class Gateway:
    """The data plane's live state: routes with their deployments' health, the
    dispatcher, the recorder and metrics. Built once per process by ``keel.server``."""

    def __init__(
        self,
        settings: KeelSettings,
        providers: Mapping[str, Provider],
        sink: RecordSink | None,
        metrics: GatewayMetrics,
        ready_check: ReadyCheck,
    ) -> None:
        self.settings = settings
        self.providers = dict(providers)
        self.metrics = metrics
        self.router: Router = build_router(settings, self.providers)
        self.dispatcher = Dispatcher(self.router, settings.retry, metrics)
        self.recorder = Recorder(settings.request_log, sink, metrics)
        self._ready_check = ready_check
        self._created = int(time.time())

    def routes(self) -> list[BaseRoute]:
        limit = self.settings.server.max_body_bytes
        endpoints = {
            op: OpenAIEndpoint(op, self.router, self.dispatcher, self.recorder, limit)
            for op in (CHAT, COMPLETIONS, EMBEDDINGS)
        }
        paths = {CHAT: "/chat/completions", COMPLETIONS: "/completions", EMBEDDINGS: "/embeddings"}
        out: list[BaseRoute] = []
        for op, path in paths.items():
            # Both /v1/... and the bare path: some clients are configured without /v1.
            out.append(Route(f"/v1{path}", endpoints[op], methods=["POST"]))
            out.append(Route(path, endpoints[op], methods=["POST"]))
        out += [
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/models/{model:path}", self._model, methods=["GET"]),
            Route("/health/live", self._live, methods=["GET"]),
            Route("/health/ready", self._ready, methods=["GET"]),
            Route("/metrics", self._metrics, methods=["GET"]),
        ]
        return out

    def _model_object(self, name: str) -> dict[str, object]:
        return {"id": name, "object": "model", "created": self._created, "owned_by": "keel"}

    async def _models(self, request: Request) -> Response:
        data = [self._model_object(name) for name in self.router.routes]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")

    async def _model(self, request: Request) -> Response:
        name = request.path_params["model"]
        if name not in self.router.routes:
            return _error_response(
                404, f"The model '{name}' does not exist.", "invalid_request_error", "model_not_found"
            )
        return Response(orjson.dumps(self._model_object(name)), media_type="application/json")

    async def _live(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _ready(self, request: Request) -> Response:
        if await self._ready_check():
            return JSONResponse({"status": "ready", "store": "ok"})
        return JSONResponse({"status": "unavailable", "store": "unreachable"}, status_code=503)

    async def _metrics(self, request: Request) -> Response:
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE)


def _error_response(status: int, message: str, type_: str, code: str | None = None) -> Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _error_response(404, f"Unknown path: {request.url.path}", "invalid_request_error", "not_found")
    if exc.status_code == 405:
        return _error_response(
            405, f"Method {request.method} is not allowed on {request.url.path}.", "invalid_request_error"
        )
    return _error_response(exc.status_code, str(exc.detail), "invalid_request_error")


def create_app(gateway: Gateway, lifespan: Lifespan | None = None) -> Starlette:
    return Starlette(
        routes=gateway.routes(),
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
