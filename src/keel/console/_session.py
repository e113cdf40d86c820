"""Console sessions: a signed cookie that holds a key id and an expiry, nothing secret.

The value is ``base64url(json) + "." + hex(HMAC-SHA256(secret, base64url(json)))``. The
key itself never leaves the login form: each request re-reads the key's row by id (see
``_viewer``), so a revoked or expired key ends its sessions at once, in every process.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE_NAME = "keel_console"


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str
    expires_at: float  # Unix seconds


class SessionSigner:
    """Signs and checks session cookies. Without ``secret`` a random one is made per
    process: logins do not survive a restart nor cross replicas (set ``console.secret``)."""

    def __init__(self, secret: str | None, ttl_s: float) -> None:
        material = secret.encode() if secret else secrets.token_bytes(32)
        # Derived, so that the configured secret is not itself the HMAC key of anything else.
        self._key = hashlib.sha256(b"keel-console-session\x00" + material).digest()
        self.ttl_s = ttl_s

    def issue(self, key_id: str, now: float | None = None) -> tuple[str, Session]:
        session = Session(key_id, (now if now is not None else time.time()) + self.ttl_s)
        payload = json.dumps({"k": session.key_id, "e": round(session.expires_at)}, separators=(",", ":"))
        body = base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()
        return f"{body}.{self._sign(body)}", session

    def verify(self, value: str | None, now: float | None = None) -> Session | None:
        """The session in a cookie value, or None when it is missing, forged or expired."""
        if not value or value.count(".") != 1:
            return None
        body, signature = value.split(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = Session(str(data["k"]), float(data["e"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if session.expires_at <= (now if now is not None else time.time()):
            return None
        return session

    def csrf_token(self, value: str) -> str:
        """The token a session's POST forms carry: bound to this cookie value (so to one
        login), unguessable without the signing key, and never stored."""
        return hmac.new(self._key, b"csrf\x00" + value.encode(), hashlib.sha256).hexdigest()

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
