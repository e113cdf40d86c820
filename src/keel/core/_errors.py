"""Keel's one error hierarchy.

Every failure that a user or a client can see is one of these. Only the gateway turns
them into OpenAI-format JSON (``gateway``'s error mapping); the CLI prints their
message on one line and exits non-zero.

    KeelError                      base; ``status`` and ``type`` say how HTTP shows it
    ├── InvalidRequest             400  malformed JSON, wrong types, missing fields
    │   └── PayloadTooLarge        413  body over the configured limit
    ├── AuthenticationError        401  missing or bad key
    ├── PermissionDenied           403  key may not do this
    ├── NotFound                   404  unknown model, request, prompt ...
    ├── RateLimited                429  rate limit refusal (``retry_after``, ``headers``)
    │   └── BudgetExceeded         429  a hard budget would be exceeded
    ├── GuardViolation             400  a guard policy blocked the request
    ├── ProviderError              502  upstream answered with an error
    │   ├── UpstreamTimeout        504  upstream did not answer in time
    │   └── UpstreamUnavailable    503  no deployment can take the call (breakers open)
    ├── ConfigError                     invalid configuration (with locations)
    └── MissingPrerequisite             an optional extra or built artefact is missing
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class KeelError(Exception):
    """Base class: a message safe to show, an HTTP status and an OpenAI error type."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(KeelError):
    status = 400
    type = "invalid_request_error"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "payload_too_large"


class AuthenticationError(KeelError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(KeelError):
    status = 403
    type = "permission_error"


class NotFound(KeelError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class RateLimited(KeelError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
        # Extra response headers (``x-ratelimit-*``) the gateway sends with the 429.
        self.headers = headers or {}


class BudgetExceeded(RateLimited):
    """A hard budget would be exceeded by this request (OpenAI's quota error)."""

    type = "insufficient_quota"
    code = "budget_exceeded"


class GuardViolation(KeelError):
    status = 400
    type = "invalid_request_error"
    code = "guard_violation"


_CLIENT_FAULT_STATUSES = frozenset({400, 413, 422})


class ProviderError(KeelError):
    """Upstream answered with an error (or broke the connection).

    ``upstream_status`` is the provider's HTTP status (None for a connection error);
    ``retryable`` says whether another attempt may succeed; ``retry_after`` carries the
    provider's ``Retry-After`` in seconds when it sent one.
    """

    status = 502
    type = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        body: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        kind: str = "upstream_error",
    ) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status
        self.body = body
        self.retryable = retryable
        self.retry_after = retry_after
        self.kind = kind
        # Upstream says the request itself is bad: pass that on. Other 4xx (401, 403,
        # 404 ...) mean the gateway's configuration is wrong (key, model id): a 502,
        # so that a bad provider key never looks like the client's own key failing.
        if upstream_status in _CLIENT_FAULT_STATUSES:
            self.status = upstream_status
            self.type = "invalid_request_error"
        elif upstream_status == 429:
            self.status = 429
            self.type = "rate_limit_error"


class UpstreamTimeout(ProviderError):
    status = 504
    type = "timeout"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True, kind="timeout")


class UpstreamUnavailable(ProviderError):
    status = 503
    type = "service_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, kind="unavailable")


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration: where (``providers.openai.base_url``) and what."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ConfigError(KeelError):
    status = 500
    type = "config_error"

    def __init__(self, problems: Sequence[ConfigProblem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"invalid configuration{f' in {source}' if source else ''}"
        super().__init__(f"{head}: " + "; ".join(str(p) for p in self.problems))


class MissingPrerequisite(KeelError):
    status = 503
    type = "service_unavailable"
