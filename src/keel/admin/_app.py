"""The admin API application: one FastAPI app, mounted by the gateway at ``/admin``.

Each domain's routes live in their own module (``_access_api``, ``_spend_api``,
``_prompts_api``) as an ``APIRouter``; the services they use are set on ``app.state``
by the composition root (``keel.server``), so the routers never build anything.
"""

from __future__ import annotations

from fastapi import FastAPI

from keel.admin import _access_api, _prompts_api, _spend_api


def create_admin_app(**services: object) -> FastAPI:
    """The admin app; ``services`` (``engine``, ``keys``, ``audit``, ``spend`` ...) become
    attributes of ``app.state``."""
    app = FastAPI(
        title="Keel admin API",
        version="1",
        description="Teams, keys, budgets, prices, prompts and usage. Authenticate with "
        "`Authorization: Bearer <key>` (an admin, team admin or member key).",
    )
    for name, service in services.items():
        setattr(app.state, name, service)
    for module in (_access_api, _spend_api, _prompts_api):
        app.include_router(module.router)
    return app
