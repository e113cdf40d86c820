"""Who is calling the admin API, and what they may do.

``principal`` is the FastAPI dependency every route takes: it reads
``Authorization: Bearer <key>`` and resolves it through the key ring on
``app.state.keys`` (a ``keel.access.KeyRing``, or anything with its
``authenticate_async``). Service keys are for the data plane only and are refused here.
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request

from keel.access import Actor, Principal
from keel.core import AuthenticationError, PermissionDenied


class Authenticator(Protocol):
    def authenticate(self, token: str) -> Principal: ...

    async def authenticate_async(self, token: str) -> Principal: ...


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationError("Missing Authorization header: send 'Authorization: Bearer <key>'.")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("Malformed Authorization header: expected 'Bearer <key>'.")
    return token


async def principal(request: Request) -> Principal:
    keys: Authenticator = request.app.state.keys
    # The async form: a key created by another process since the last poll still works.
    who = await keys.authenticate_async(bearer_token(request))
    if who.role == "service":
        raise PermissionDenied("Service keys may call the data plane only, not the admin API.")
    return who


Caller = Annotated[Principal, Depends(principal)]


async def any_principal(request: Request) -> Principal:
    """Any valid key, service keys included: for the few read-only routes an application
    itself needs (fetching a prompt version to render it)."""
    keys: Authenticator = request.app.state.keys
    return await keys.authenticate_async(bearer_token(request))


AppCaller = Annotated[Principal, Depends(any_principal)]


def require_admin(who: Principal) -> None:
    if not who.is_admin:
        raise PermissionDenied("This needs an admin key.")


def require_team_admin(who: Principal, team_id: str) -> None:
    """Admins manage every team; a team admin only its own."""
    if who.is_admin:
        return
    if who.role == "team_admin" and who.team_id == team_id:
        return
    raise PermissionDenied("This needs an admin key or a team admin key of this team.")


def require_team_reader(who: Principal, team_id: str) -> None:
    """Admins read every team; team admins and members read their own team."""
    if who.is_admin or who.team_id == team_id:
        return
    raise PermissionDenied("This key cannot read another team's data.")


def actor_of(who: Principal) -> str:
    """How the audit log names the caller (never the key itself)."""
    return Actor.of_key(who).label
