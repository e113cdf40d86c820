"""The data plane with OpenTelemetry spans.

The gateway builds these instead of ``OpenAIEndpoint`` and ``Dispatcher`` when tracing
is configured, so the untraced data plane has no span objects and no "is tracing on?"
check per request. Each overrides the steps worth a span and calls the plain one:

    chat gpt-4o              SERVER, the whole request (gen_ai.*, keel.*)
    ├── guard input          the input policy (keel.guard.policy, keel.guard.decision)
    ├── cache lookup         keel.cache.result: hit, semantic_hit, miss
    │   └── upstream emb-1   the semantic cache's embedding call, when it makes one
    ├── upstream azure-east  CLIENT, one per attempt (keel.attempt, http.response.status_code)
    ├── upstream openai-1    a retry or a fallback
    └── guard output         the output policy on a whole answer
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keel.cache import CacheHit
from keel.core import JSONObject, ProviderError, RouteCacheSettings
from keel.gateway._asgi import Receive, Scope, Send
from keel.gateway._dispatch import Dispatcher, DispatchTrace, UpstreamCall
from keel.gateway._guarding import GuardedCall
from keel.gateway._openai_api import OpenAIEndpoint, _Call
from keel.gateway._routing import DeploymentState, Route
from keel.guards import Policy, PolicyOutcome
from keel.store import RequestRecord
from keel.telemetry import Tracing


class TracedDispatcher(Dispatcher):
    """A span per upstream attempt. ``systems`` maps a provider entry to its type
    (``openai``, ``anthropic`` ...): the GenAI ``gen_ai.provider.name``."""

    def __init__(self, *args: Any, tracing: Tracing, systems: Mapping[str, str]) -> None:
        super().__init__(*args)
        self._tracing = tracing
        self._systems = systems

    async def _attempt(self, state: DeploymentState, call: UpstreamCall[Any], trace: DispatchTrace) -> Any:
        deployment = state.deployment
        route = trace.route.name if trace.route is not None else None
        system = self._systems.get(deployment.provider, deployment.provider)
        tracing = self._tracing
        with tracing.attempt(
            deployment.name, deployment.model, system, route=route, number=trace.attempts
        ) as span:
            try:
                result = await super()._attempt(state, call, trace)
            except ProviderError as exc:
                tracing.fail(span, exc.kind, exc.message, exc.upstream_status)
                raise
            except BaseException as exc:
                tracing.fail(span, type(exc).__name__)
                raise
            span.set_attribute("http.response.status_code", 200)
            return result


class TracedEndpoint(OpenAIEndpoint):
    """The request's SERVER span, and spans for its guard scans and cache lookup."""

    def __init__(self, *args: Any, tracing: Tracing, systems: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tracing = tracing
        self._systems = systems

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self._tracing.request(self.op.endpoint, scope["headers"]):
            await super().__call__(scope, receive, send)

    async def _settle(self, call: _Call) -> None:
        # The last step with the request's span current: everything it sets is known.
        await super()._settle(call)
        record = call.record
        state = call.trace.state
        system = self._systems.get(record.provider) if record.provider is not None else None
        self._tracing.finish_request(
            self._tracing.current(),
            record,
            response_model=state.deployment.model if state is not None else None,
            system=system,
        )

    async def _guard_request(self, policy: Policy, body: JSONObject, call: _Call) -> JSONObject:
        with self._tracing.span("guard input", {"keel.guard.policy": policy.name}) as span:
            try:
                return await super()._guard_request(policy, body, call)
            finally:
                if call.guard is not None:
                    span.set_attribute("keel.guard.decision", call.guard.input.decision)

    async def _guard_answer(
        self, guarded: GuardedCall, answer: JSONObject
    ) -> tuple[JSONObject, JSONObject, PolicyOutcome]:
        with self._tracing.span("guard output", {"keel.guard.policy": guarded.policy.name}) as span:
            done = await super()._guard_answer(guarded, answer)
            span.set_attribute("keel.guard.decision", done[2].decision)
            return done

    async def _lookup(
        self, route: Route, settings: RouteCacheSettings, record: RequestRecord, body: JSONObject
    ) -> CacheHit | None:
        with self._tracing.span("cache lookup", {"keel.route": route.name}) as span:
            hit = await super()._lookup(route, settings, record, body)
            result = "miss" if hit is None else "hit" if hit.kind == "exact" else "semantic_hit"
            span.set_attribute("keel.cache.result", result)
            return hit
