"""The console's ASGI app (Starlette), mounted by the server at ``/ui``.

Every page needs a session: a signed cookie naming a key (``_session``), issued by the
login form to an admin, team admin or member key, and checked against the key's row on
each request (``_viewer``). The JSON and CSV endpoints also take ``Authorization:
Bearer <key>`` so that scripts can read them; either way a team's key sees its team only.
Handlers query the store, so each runs in a worker thread.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from keel.access import KeyRing
from keel.console._pages import Page, PageContext, PageResult, nav_pages
from keel.console._range import PRESETS, parse_range
from keel.console._render import render
from keel.console._routes import default_pages
from keel.console._session import COOKIE_NAME, SessionSigner
from keel.console._viewer import Viewer, load_viewer, may_use_console
from keel.core import AuthenticationError, KeelError, KeelSettings, PermissionDenied

log = logging.getLogger("keel.console")

_CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_MAX_LOGIN_BODY = 4096
_MAX_FORM_BODY = 256 * 1024  # a review's correction may be long


class ConsoleApp:
    def __init__(
        self, *, engine: Engine, keys: KeyRing, settings: KeelSettings, pages: Sequence[Page] = ()
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.settings = settings
        self.signer = SessionSigner(settings.console.secret, settings.console.session_ttl)
        self.pages = [*default_pages(), *pages]
        routes: list[BaseRoute] = [
            Route("/", self.home, methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Mount("/static", app=StaticFiles(packages=[("keel.console", "static")]), name="static"),
        ]
        routes += [Route(page.path, self._endpoint(page), methods=list(page.methods)) for page in self.pages]
        self.starlette = Starlette(routes=routes)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.starlette(scope, receive, send)

    # -- sessions --------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return RedirectResponse(f"{_base(request)}/overview", status_code=303)

    async def login_form(self, request: Request) -> Response:
        return self._login_page(request, error=None, status=200)

    def _login_page(self, request: Request, *, error: str | None, status: int) -> Response:
        html = render(
            "login.html",
            base=_base(request),
            next=_safe_next(request, request.query_params.get("next")),
            error=error,
            title="Sign in",
        )
        return _secure(HTMLResponse(html, status_code=status))

    async def login(self, request: Request) -> Response:
        body = await request.body()
        form = dict(parse_qsl(body[:_MAX_LOGIN_BODY].decode("utf-8", "replace")))
        token = (form.get("key") or "").strip()
        try:
            principal = await self.keys.authenticate_async(token)
        except AuthenticationError as exc:
            return self._login_page(request, error=str(exc), status=401)
        if not may_use_console(principal):
            return self._login_page(
                request,
                error="Service keys call the API only: sign in with an admin or team key.",
                status=403,
            )
        value, _ = self.signer.issue(principal.key_id)
        response = RedirectResponse(_safe_next(request, form.get("next")), status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=int(self.signer.ttl_s),
            path=_base(request) or "/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse(f"{_base(request)}/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path=_base(request) or "/", httponly=True, samesite="lax")
        return response

    def _viewer(self, request: Request, bearer: Any) -> Viewer | None:
        if bearer is not None:
            return load_viewer(self.engine, bearer.key_id)
        session = self.signer.verify(request.cookies.get(COOKIE_NAME))
        return load_viewer(self.engine, session.key_id) if session is not None else None

    # -- pages -----------------------------------------------------------------------

    def _endpoint(self, page: Page) -> Any:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            machine = _is_machine(page)
            bearer = None
            header = request.headers.get("authorization", "")
            if header.lower().startswith("bearer "):
                try:
                    bearer = await self.keys.authenticate_async(header[7:].strip())
                except AuthenticationError as exc:
                    return _error_json(401, str(exc))
            form: dict[str, str] = {}
            if request.method == "POST":
                body = (await request.body())[:_MAX_FORM_BODY]
                form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            try:
                response = await run_in_threadpool(self._serve, page, request, bearer, form)
            except KeelError as exc:
                response = self._error(request, page, exc, machine)
            except Exception:
                log.exception("console: %s failed", request.url.path)
                response = self._error(
                    request, page, KeelError("Something went wrong; see the log."), machine
                )
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            return _secure(response)

        return endpoint

    def _serve(self, page: Page, request: Request, bearer: Any, form: dict[str, str]) -> Response:
        viewer = self._viewer(request, bearer)
        if viewer is None:
            if _is_machine(page):
                return _error_json(401, "Sign in, or send 'Authorization: Bearer <admin or team key>'.")
            target = urlencode(
                {"next": request.url.path + (f"?{request.url.query}" if request.url.query else "")}
            )
            return RedirectResponse(f"{_base(request)}/login?{target}", status_code=303)
        if page.admin_only and not viewer.is_admin:
            return self._not_found(request, viewer)
        try:
            return self._page(page, request, viewer, bearer, form)
        except KeelError as exc:
            if _is_machine(page):
                raise
            # With the navigation: the viewer is signed in, only this page failed.
            html = render(
                "error.html",
                base=_base(request),
                nav=nav_pages(self.pages, viewer),
                viewer=viewer,
                title=str(exc.status),
                message=str(exc),
                status=exc.status,
            )
            return HTMLResponse(html, status_code=exc.status)

    def _page(
        self, page: Page, request: Request, viewer: Viewer, bearer: Any, form: dict[str, str]
    ) -> Response:
        cookie = request.cookies.get(COOKIE_NAME)
        csrf = self.signer.csrf_token(cookie) if cookie and bearer is None else ""
        # A form posted with the session cookie must carry the session's token: another
        # site can make a browser send the cookie, not read the token off a page.
        posted = request.method == "POST" and bearer is None
        if posted and not (csrf and hmac.compare_digest(form.get("csrf", ""), csrf)):
            raise PermissionDenied(
                "This form has expired or did not come from the console: reload and retry."
            )
        ctx = PageContext(
            engine=self.engine,
            settings=self.settings,
            viewer=viewer,
            range=parse_range(request.query_params),
            params=request.query_params,
            path_params=request.path_params,
            base=_base(request),
            method=request.method,
            form=form,
            csrf_token=csrf,
        )
        result = page.handler(ctx)
        if isinstance(result, Response):
            return result
        return HTMLResponse(self._html(ctx, page, result))

    def _html(self, ctx: PageContext, page: Page, result: PageResult) -> str:
        return render(
            result.template,
            ctx=ctx,
            page=page,
            nav=nav_pages(self.pages, ctx.viewer),
            presets=list(PRESETS),
            viewer=ctx.viewer,
            base=ctx.base,
            title=result.title or page.title,
            **result.context,
        )

    def _error(self, request: Request, page: Page, exc: KeelError, machine: bool) -> Response:
        if machine:
            return _error_json(exc.status, str(exc))
        html = render(
            "error.html",
            base=_base(request),
            nav=[],
            viewer=None,
            title=f"{exc.status}",
            message=str(exc),
            status=exc.status,
        )
        return HTMLResponse(html, status_code=exc.status)

    def _not_found(self, request: Request, viewer: Viewer) -> Response:
        html = render(
            "error.html",
            base=_base(request),
            nav=nav_pages(self.pages, viewer),
            viewer=viewer,
            title="404",
            message="No such page.",
            status=404,
        )
        return HTMLResponse(html, status_code=404)


def create_console_app(
    *, engine: Engine, keys: KeyRing, settings: KeelSettings, pages: Sequence[Page] = ()
) -> ASGIApp:
    """The console as an ASGI app to mount (the server mounts it at ``/ui``). ``keys`` is
    the process's key ring (started by the server's lifespan); ``pages`` adds pages to
    the built-in ones."""
    return ConsoleApp(engine=engine, keys=keys, settings=settings, pages=pages)


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _safe_next(request: Request, target: str | None) -> str:
    """Where to go after signing in: a path inside the console, never another site."""
    base = _base(request)
    if target and target.startswith(f"{base}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{base}/overview"


def _is_machine(page: Page) -> bool:
    return page.path.startswith("/api/") or page.path.endswith(".csv")


def _error_json(status: int, message: str) -> Response:
    return _secure(JSONResponse({"error": {"message": message, "status": status}}, status_code=status))


def _secure(response: Response) -> Response:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Content-Security-Policy", _CSP)
    return response
