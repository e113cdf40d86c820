"""Spend control cannot do its job right now (HTTP 503)."""

from __future__ import annotations

from keel.core import KeelError


class SpendUnavailable(KeelError):
    """Budgets and limits cannot be enforced: Redis is unreachable (``on_redis_error:
    closed``) or the spend ledger cannot be written. The request is refused rather than
    let through uncounted."""

    status = 503
    type = "service_unavailable"
    code = "spend_unavailable"
