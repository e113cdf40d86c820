"""The client's key, from the headers OpenAI and Anthropic clients send it in."""

from __future__ import annotations

from keel.core import AuthenticationError
from keel.gateway._asgi import Scope

_KEY_HEADERS = (b"authorization", b"api-key", b"x-api-key")


def client_key(scope: Scope) -> str:
    """``Authorization: Bearer <key>`` (OpenAI SDKs), else ``api-key`` (Azure-style
    clients) or ``x-api-key`` (Anthropic-style clients)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _KEY_HEADERS:
            found[name] = value
    authorization = found.get(b"authorization")
    if authorization is not None:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("Malformed Authorization header: expected 'Bearer <key>'.")
        return token
    for name in (b"api-key", b"x-api-key"):
        value = found.get(name)
        if value is not None:
            token = value.decode("latin-1").strip()
            if not token:
                raise AuthenticationError(f"Empty {name.decode()} header.")
            return token
    raise AuthenticationError(
        "Missing API key: send 'Authorization: Bearer <key>' (a Keel virtual key, see `keel keys create`)."
    )
