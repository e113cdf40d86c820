"""Settings types: the shape of ``keel.yaml`` once interpolated and validated.

Loading (YAML, ``${ENV}`` interpolation, ``KEEL_*`` overrides, error locations) lives in
``_config_loader``; this module only says what a valid configuration is. Every model
forbids unknown keys so that a typo is an error with a location, not a silent default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from keel.core._settings_access import AccessSettings
from keel.core._settings_alerts import AlertSettings
from keel.core._settings_cache import CacheSettings, RouteCacheSettings
from keel.core._settings_console import ConsoleSettings
from keel.core._settings_guards import GuardSettings
from keel.core._settings_monitor import MonitorSettings
from keel.core._settings_prompts import PromptSettings
from keel.core._settings_release import ReleaseSettings
from keel.core._settings_spend import RateLimitSettings, SpendSettings
from keel.core._settings_telemetry import TelemetrySettings

ProviderType = Literal["openai", "anthropic", "local"]
RouteStrategy = Literal["weighted", "least_inflight", "lowest_latency"]
RouteMode = Literal["chat", "completion", "embedding"]

DEMO_CHAT_MODEL = "keel-demo"
DEMO_EMBEDDING_MODEL = "all-minilm-l6-v2"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Strict):
    """Seconds. ``read`` bounds the wait for the first byte and between reads of a
    non-streaming body; ``stream_idle`` bounds the silence between two stream chunks."""

    connect: float = Field(5.0, gt=0)
    read: float = Field(120.0, gt=0)
    total: float = Field(600.0, gt=0)
    stream_idle: float = Field(60.0, gt=0)


class RetryPolicy(_Strict):
    """Exponential backoff with full jitter: attempt ``n`` waits up to
    ``min(backoff_max, backoff_base * 2**n)``; a ``Retry-After`` from upstream wins
    when it is no longer than ``max_retry_after``."""

    max_attempts: int = Field(3, ge=1, le=20)
    backoff_base: float = Field(0.25, ge=0)
    backoff_max: float = Field(8.0, ge=0)
    jitter: bool = True
    max_retry_after: float = Field(30.0, ge=0)
    retry_on_status: tuple[int, ...] = (408, 429, 500, 502, 503, 504)


class BreakerPolicy(_Strict):
    """Per-deployment circuit breaker: open after ``failure_threshold`` consecutive
    failures, let one probe through after ``cooldown`` seconds (half-open)."""

    failure_threshold: int = Field(5, ge=1)
    cooldown: float = Field(30.0, ge=0)


class ProviderSettings(_Strict):
    type: ProviderType
    base_url: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # Only for ``anthropic``: the API version header.
    api_version: str | None = None
    # Only for ``local``: "cpu", "cuda", "auto".
    device: str = "auto"
    max_connections: int = Field(256, ge=1)


class DeploymentSettings(_Strict):
    """One place a model name can be served from: a provider and its model id."""

    provider: str
    model: str
    name: str | None = None
    weight: float = Field(1.0, gt=0)
    timeouts: Timeouts | None = None
    # Extra request fields merged into every upstream call (e.g. a vLLM sampling knob).
    params: dict[str, object] = Field(default_factory=dict)

    @property
    def effective_name(self) -> str:
        """``name``, else ``<provider>/<model>`` (the loader checks these are unique)."""
        return self.name or f"{self.provider}/{self.model}"


class RouteSettings(_Strict):
    """A public model name: its deployments, how one is chosen, and where to fall back."""

    mode: RouteMode = "chat"
    strategy: RouteStrategy = "weighted"
    deployments: list[DeploymentSettings] = Field(min_length=1)
    fallbacks: list[str] = Field(default_factory=list)
    # Tokenizer used to count usage when the provider reports none: a tiktoken
    # encoding name or a local tokenizer directory; None picks by model name.
    tokenizer: str | None = None
    # Response cache opt-in (None: never cached).
    cache: RouteCacheSettings | None = None
    # Requests/tokens per minute for the whole model, across keys.
    limits: RateLimitSettings | None = None
    # Guardrail policy (a name under ``guards.policies``); None: ``guards.default_policy``.
    guard_policy: str | None = None


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(4000, ge=0, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    graceful_timeout: float = Field(30.0, ge=0)


class StoreSettings(_Strict):
    # None means SQLite at ``<home>/keel.db``.
    url: str | None = None


class RequestLogSettings(_Strict):
    enabled: bool = True
    # Keep request and response bodies (capped at ``max_body_bytes`` each).
    bodies: bool = True
    max_body_bytes: int = Field(32 * 1024, ge=0)
    queue_size: int = Field(50_000, ge=1)
    batch_size: int = Field(500, ge=1)
    flush_interval: float = Field(0.25, gt=0)


class KeelSettings(_Strict):
    """The whole configuration. ``home`` is the data directory."""

    home: Path
    server: ServerSettings = ServerSettings()
    store: StoreSettings = StoreSettings()
    request_log: RequestLogSettings = RequestLogSettings()
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    models: dict[str, RouteSettings] = Field(default_factory=dict)
    # Shared counters (budgets, rate limits) and cache across processes; None: in-process.
    redis_url: str | None = None
    access: AccessSettings = AccessSettings()
    spend: SpendSettings = SpendSettings()
    cache: CacheSettings = CacheSettings()
    guards: GuardSettings = GuardSettings()
    prompts: PromptSettings = PromptSettings()
    alerts: AlertSettings = AlertSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    console: ConsoleSettings = ConsoleSettings()
    monitor: MonitorSettings = MonitorSettings()
    release: ReleaseSettings = ReleaseSettings()
    # Where the configuration came from (None: embedded defaults).
    source: str | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> KeelSettings:
        # Cross-references are checked by the loader so that each problem gets its own
        # location; this guard keeps programmatic construction honest too.
        for route_name, route in self.models.items():
            for dep in route.deployments:
                if dep.provider not in self.providers:
                    raise ValueError(f"models.{route_name}: unknown provider {dep.provider!r}")
            for fb in route.fallbacks:
                if fb not in self.models:
                    raise ValueError(f"models.{route_name}: unknown fallback model {fb!r}")
            if route.guard_policy is not None and route.guard_policy not in self.guards.policies:
                raise ValueError(f"models.{route_name}: unknown guard policy {route.guard_policy!r}")
        return self

    @property
    def database_url(self) -> str:
        return self.store.url or f"sqlite:///{self.home / 'keel.db'}"


def effective_timeouts(settings: KeelSettings, deployment: DeploymentSettings) -> Timeouts:
    """The deployment's timeouts: the keys it sets, the top-level ``timeouts`` for the rest."""
    if deployment.timeouts is None:
        return settings.timeouts
    chosen = {key: getattr(deployment.timeouts, key) for key in deployment.timeouts.model_fields_set}
    return settings.timeouts.model_copy(update=chosen)
