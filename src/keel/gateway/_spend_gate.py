"""Admission and settlement of one request's spend: rate limits, the budget
reservation before the upstream call, the settlement after it.

The reservation is the request's most possible cost: every input token (bounded by the
request body's size in bytes: a token is at least one byte of the text it encodes, and
the JSON around the text more than covers the few tokens a chat template adds) plus
every output token it allows, at the highest price among the deployments its route and
fallbacks may use. A request that sets no output limit while a hard budget applies gets
``max_tokens`` set to ``spend.default_max_output_tokens``: without a cap its cost has no
bound, and no reservation could keep the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from keel.access import Principal
from keel.core import JSONObject, SpendSettings, Usage
from keel.gateway._routing import Route, Router
from keel.spend import (
    NO_LIMITS,
    Counters,
    LimitWindow,
    Nanos,
    RateLimitGrant,
    Reservation,
    SpendLedger,
    SpendScopes,
)

# The rate limits of a key and its team: (key id, team id) -> windows.
LimitsOf = Callable[[str | None, str | None], Sequence[LimitWindow]]


@dataclass(slots=True)
class Admission:
    """What a request was admitted with; settled exactly once."""

    grant: RateLimitGrant
    scopes: SpendScopes
    input_bound: int
    output_bound: int
    reservation: Reservation | None = None
    # The upstream is held to ``output_bound`` (the request sets max_tokens, or admission
    # set it): it cannot produce more output than that.
    output_capped: bool = False

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(k.encode(), v.encode()) for k, v in self.grant.headers.items()]


def _output_limit(body: JSONObject) -> int | None:
    for field in ("max_completion_tokens", "max_tokens"):
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _choices(body: JSONObject) -> int:
    n = body.get("n")
    best_of = body.get("best_of")  # completions generate best_of and bill them all
    count = max(n if isinstance(n, int) and n > 0 else 1, best_of if isinstance(best_of, int) else 1)
    return count


class SpendGate:
    def __init__(
        self,
        ledger: SpendLedger,
        counters: Counters,
        settings: SpendSettings,
        router: Router,
        limits_of: LimitsOf | None = None,
    ) -> None:
        self.ledger = ledger
        self._counters = counters
        self._settings = settings
        self._router = router
        self._limits_of = limits_of
        self._models: dict[str, tuple[str, ...]] = {}
        self._route_limits: dict[str, LimitWindow | None] = {}

    def _chain_models(self, route: Route) -> tuple[str, ...]:
        models = self._models.get(route.name)
        if models is None:
            models = self._models[route.name] = tuple(
                {state.deployment.model: None for r in self._router.chain(route) for state in r.deployments}
            )
        return models

    def _limits(self, principal: Principal | None, route: Route) -> list[LimitWindow]:
        limits: list[LimitWindow] = []
        if route.name not in self._route_limits:
            configured = route.settings.limits
            self._route_limits[route.name] = (
                LimitWindow(f"model:{route.name}", configured.rpm, configured.tpm) if configured else None
            )
        route_limit = self._route_limits[route.name]
        if route_limit is not None:
            limits.append(route_limit)
        if principal is not None and self._limits_of is not None:
            limits.extend(self._limits_of(principal.key_id, principal.team_id))
        return limits

    async def admit(
        self,
        principal: Principal | None,
        route: Route,
        body: JSONObject,
        body_bytes: int,
        end_user: str | None,
        at: datetime,
        *,
        generates: bool,
    ) -> Admission:
        """Take the rate limits (raises ``RateLimited``). ``generates``: the operation
        produces output tokens (not embeddings)."""
        scopes = SpendScopes(
            principal.key_id if principal else None,
            principal.team_id if principal else None,
            end_user,
            route.name,
        )
        output_bound = 0
        capped = False
        injected: tuple[str, ...] = ()
        if generates:
            limit = _output_limit(body)
            capped = limit is not None
            if limit is None:
                limit = self._settings.default_max_output_tokens
                if any(w.budget.hard for w in self.ledger.windows_for(scopes, at)):
                    body["max_tokens"] = limit
                    capped = True
                    injected = ("max_tokens",)
            output_bound = limit * _choices(body)
        limits = self._limits(principal, route)
        grant = NO_LIMITS
        if limits:
            # Tokens per minute take an estimate, as OpenAI's limits do (about four bytes a
            # token, plus the output the request asks for; a default it did not ask for is
            # not counted), and settle the actual count afterwards. The budget reservation
            # below is the strict bound instead.
            asked = output_bound if capped and "max_tokens" not in injected else 0
            grant = await self._counters.take(limits, tokens=(body_bytes + 3) // 4 + asked)
        return Admission(grant, scopes, body_bytes, output_bound, output_capped=capped)

    async def reserve(self, admission: Admission, request_id: str, route: Route, at: datetime) -> None:
        """Reserve the most the request can cost (raises ``BudgetExceeded``)."""
        prices = self.ledger.prices
        amount = max(
            (
                prices.max_cost(model, admission.input_bound, admission.output_bound, at)
                for model in self._chain_models(route)
            ),
            default=0,
        )
        if amount == 0:
            # An unpriced model: nothing to hold against a budget, nothing a crash could lose.
            return
        admission.reservation = await self.ledger.reserve(request_id, admission.scopes, amount, at=at)

    @staticmethod
    def bounded_usage(admission: Admission, usage: Usage) -> Usage:
        """``usage`` the gateway counted or estimated (the upstream reported none), held to
        what the request let the upstream produce: output to its max_tokens (times the
        choices), input to the body's size. An estimate can come to more (four characters
        a token, against an answer of long tokens), but the upstream stopped at the limit,
        so that is the most it can have cost; charging more would overrun the reservation
        and so the budget. Reported usage is the upstream's own bill: charged as it is."""
        if usage.source == "reported":
            return usage
        input_tokens = min(usage.input_tokens, admission.input_bound)
        output_tokens = usage.output_tokens
        if admission.output_capped:
            output_tokens = min(output_tokens, admission.output_bound)
        if input_tokens == usage.input_tokens and output_tokens == usage.output_tokens:
            return usage
        return replace(
            usage,
            input_tokens=input_tokens,
            cached_input_tokens=min(usage.cached_input_tokens, input_tokens),
            output_tokens=output_tokens,
        )

    def cost(self, model: str, usage: Usage, at: datetime) -> Nanos | None:
        """What ``usage`` of upstream ``model`` costs at ``at`` (None: unpriced)."""
        return self.ledger.prices.cost(model, usage, at)

    async def settle(self, admission: Admission, cost: Nanos | None, tokens: int) -> None:
        if admission.reservation is not None:
            await self.ledger.settle(admission.reservation, cost)
        if admission.grant.limits:
            await self._counters.adjust(admission.grant, tokens)
