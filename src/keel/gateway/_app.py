"""The gateway's ASGI application: data-plane routes plus health and metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from keel.core import KeelSettings
from keel.gateway._asgi import Receive, Scope, Send
from keel.gateway._dispatch import Dispatcher, DispatchTrace
from keel.gateway._guard_api import GuardScanEndpoint
from keel.gateway._openai_api import CHAT, COMPLETIONS, EMBEDDINGS, OpenAIEndpoint
from keel.gateway._recorder import Recorder, RecordSink
from keel.gateway._routing import Router, build_router
from keel.gateway._services import GatewayServices
from keel.gateway._traced import TracedDispatcher, TracedEndpoint
from keel.providers import Deployment, Provider, ProviderResponse
from keel.telemetry import CONTENT_TYPE, GatewayMetrics, Tracing, build_tracing

ReadyCheck = Callable[[], Awaitable[bool]]
Endpoint = Callable[[Scope, Receive, Send], Awaitable[None]]
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
        services: GatewayServices | None = None,
    ) -> None:
        self.settings = settings
        self.services = services or GatewayServices()
        self.providers = dict(providers)
        self.metrics = metrics
        self.router: Router = build_router(settings, self.providers)
        # Tracing decides the classes once, here: the untraced ones check nothing per request.
        if self.services.tracing is None:
            self.services.tracing = build_tracing(settings.telemetry)
        self.tracing = self.services.tracing
        self._systems = {name: provider.type for name, provider in settings.providers.items()}
        self.dispatcher: Dispatcher = (
            Dispatcher(self.router, settings.retry, metrics)
            if self.tracing is None
            else TracedDispatcher(
                self.router, settings.retry, metrics, tracing=self.tracing, systems=self._systems
            )
        )
        self.recorder = Recorder(settings.request_log, sink, metrics)
        # Read at scrape time, so that canaries promoted later are scraped too.
        router = self.router
        metrics.watch_deployments(
            lambda: ((s.deployment.name, s.breaker.state, s.in_flight) for s in router.deployment_states())
        )
        self._ready_check = ready_check
        self._created = int(time.time())

    async def embed(self, model: str, text: str) -> Sequence[float]:
        """Embed ``text`` with the embedding route ``model`` (retries and fallbacks as
        for any call), for Keel's own use, e.g. the semantic cache."""
        route = self.router.get(model)

        async def call(provider: Provider, deployment: Deployment) -> ProviderResponse:
            return await provider.embeddings({"model": model, "input": text}, deployment)

        done = await self.dispatcher.call(route, call, DispatchTrace())
        vector: Sequence[float] = done.result.body["data"][0]["embedding"]
        return vector

    def data_plane(self) -> dict[str, Endpoint]:
        """POST paths of the OpenAI endpoints (with and without ``/v1``: some clients
        are configured without it), and the guard scan API when guards are set up."""
        limit = self.settings.server.max_body_bytes
        paths = {CHAT: "/chat/completions", COMPLETIONS: "/completions", EMBEDDINGS: "/embeddings"}
        out: dict[str, Endpoint] = {}
        for op, path in paths.items():
            args = (op, self.router, self.dispatcher, self.recorder, limit, self.services, self.metrics)
            endpoint = (
                OpenAIEndpoint(*args)
                if self.tracing is None
                else TracedEndpoint(*args, tracing=self.tracing, systems=self._systems)
            )
            out[f"/v1{path}"] = endpoint
            out[path] = endpoint
        if self.services.guards is not None:
            scan = GuardScanEndpoint(self.services.guards, self.services.keys, limit)
            out["/v1/guard/scan"] = out["/guard/scan"] = scan
        return out

    def routes(self) -> list[BaseRoute]:
        """Everything but the data plane's POSTs (those only answer 405 here)."""
        out: list[BaseRoute] = [Route(path, _post_only, methods=["POST"]) for path in self.data_plane()]
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
        await self.metrics.refresh()
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


async def _post_only(request: Request) -> Response:  # pragma: no cover - POSTs never get here
    raise HTTPException(405)


class GatewayApp:
    """The ASGI app: data-plane POSTs go straight to their endpoint; everything else
    (lifespan, health, metrics, 404/405) to Starlette. Skipping Starlette's router and
    middleware stack on the hot path saves a noticeable share of the gateway's CPU."""

    def __init__(
        self,
        gateway: Gateway,
        lifespan: Lifespan | None = None,
        mounts: Mapping[str, ASGIApp] | None = None,
        apis: Mapping[str, ASGIApp] | None = None,
    ) -> None:
        self.gateway = gateway
        self._post = gateway.data_plane()
        if gateway.tracing is not None:
            lifespan = _flushing_traces(lifespan, gateway.tracing)
        routes = gateway.routes()
        # Other apps under a path prefix: the admin API at /admin, the console at /ui.
        for prefix, app in (mounts or {}).items():
            routes.append(Mount(prefix, app=app))
        # APIs beside the data plane (/v1/feedback, /v1/monitor): answered at the bare path
        # too, since a Mount alone would redirect ``POST /v1/feedback`` to ``.../`` and
        # clients do not follow a redirected POST.
        for prefix, app in (apis or {}).items():
            routes.append(Route(prefix, app, methods=["GET", "POST"]))
            routes.append(Mount(prefix, app=app))
        self.starlette = Starlette(
            routes=routes,
            exception_handlers={HTTPException: _http_error},
            lifespan=lifespan,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._post.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.starlette(scope, receive, send)


def _flushing_traces(lifespan: Lifespan | None, tracing: Tracing) -> Lifespan:
    """``lifespan``, then the last spans exported (after in-flight requests ended)."""

    @asynccontextmanager
    async def run(app: Starlette) -> AsyncIterator[None]:
        try:
            if lifespan is None:
                yield
            else:
                async with lifespan(app):
                    yield
        finally:
            await asyncio.to_thread(tracing.shutdown)

    return run


def create_app(
    gateway: Gateway,
    lifespan: Lifespan | None = None,
    mounts: Mapping[str, ASGIApp] | None = None,
    apis: Mapping[str, ASGIApp] | None = None,
) -> GatewayApp:
    """The whole ASGI app: the data plane, ``mounts`` (admin API, console) under their
    prefixes, and ``apis`` at their path and below it."""
    return GatewayApp(gateway, lifespan, mounts, apis)
