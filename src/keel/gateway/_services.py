"""The optional services the data plane uses, built by the composition root.

Each is None when not configured; the endpoint then skips its step entirely.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from keel.access import KeyRing
from keel.cache import Embed, ResponseCache
from keel.core import RouteCacheSettings
from keel.gateway._guarding import GuardPolicies
from keel.gateway._spend_gate import SpendGate
from keel.prompts import PromptCatalog
from keel.telemetry import Tracing

# Embeds a text with the named embedding route (for the semantic cache).
EmbedWith = Callable[[str, str], Awaitable[Sequence[float]]]


@dataclass
class GatewayServices:
    keys: KeyRing | None = None
    prompts: PromptCatalog | None = None
    cache: ResponseCache | None = None
    spend: SpendGate | None = None
    embed_with: EmbedWith | None = None
    guards: GuardPolicies | None = None
    # Set by the gateway from ``telemetry:`` when an OTLP endpoint is configured (or
    # given here); None: the untraced data plane, which creates no spans.
    tracing: Tracing | None = None
    _embedders: dict[str, Embed] = field(default_factory=dict)

    def embedder(self, settings: RouteCacheSettings) -> Embed | None:
        """The embedding function a route's semantic cache uses (None: exact only)."""
        model = settings.embedding_model
        if not settings.semantic or model is None or self.embed_with is None:
            return None
        embed = self._embedders.get(model)
        if embed is None:
            embed_with = self.embed_with

            async def embed_text(text: str) -> Sequence[float]:
                return await embed_with(model, text)

            embed = self._embedders[model] = embed_text
        return embed
