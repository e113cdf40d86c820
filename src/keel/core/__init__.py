"""Core types shared by every layer: errors, wire types, settings types, registries."""

from keel.core._config_loader import check_config, find_config, load_settings
from keel.core._errors import (
    AuthenticationError,
    BudgetExceeded,
    ConfigError,
    ConfigProblem,
    GuardViolation,
    InvalidRequest,
    KeelError,
    MissingPrerequisite,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ProviderError,
    RateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from keel.core._registry import Registry, SettingError
from keel.core._settings import (
    DEMO_CHAT_MODEL,
    DEMO_EMBEDDING_MODEL,
    BreakerPolicy,
    DeploymentSettings,
    KeelSettings,
    ProviderSettings,
    RequestLogSettings,
    RetryPolicy,
    RouteSettings,
    ServerSettings,
    StoreSettings,
    Timeouts,
    effective_timeouts,
)
from keel.core._settings_access import AccessSettings
from keel.core._settings_alerts import AlertSettings
from keel.core._settings_cache import CacheSettings, RouteCacheSettings
from keel.core._settings_console import ConsoleSettings
from keel.core._settings_guards import GuardAction, GuardSettings, PolicySettings, ScannerSettings
from keel.core._settings_monitor import MonitorSettings, SignalMonitorSettings
from keel.core._settings_prompts import PromptSettings
from keel.core._settings_release import ReleaseSettings
from keel.core._settings_spend import PriceSettings, RateLimitSettings, SpendSettings, TokenType
from keel.core._settings_telemetry import TelemetrySettings
from keel.core._wire import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    EmbeddingRequest,
    JSONObject,
    Usage,
    UsageSource,
)

__all__ = [
    "DEMO_CHAT_MODEL",
    "DEMO_EMBEDDING_MODEL",
    "AccessSettings",
    "AlertSettings",
    "AuthenticationError",
    "BreakerPolicy",
    "BudgetExceeded",
    "CacheSettings",
    "ChatCompletionRequest",
    "ChatMessage",
    "CompletionRequest",
    "ConfigError",
    "ConfigProblem",
    "ConsoleSettings",
    "DeploymentSettings",
    "EmbeddingRequest",
    "GuardAction",
    "GuardSettings",
    "GuardViolation",
    "InvalidRequest",
    "JSONObject",
    "KeelError",
    "KeelSettings",
    "MissingPrerequisite",
    "MonitorSettings",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "PolicySettings",
    "PriceSettings",
    "PromptSettings",
    "ProviderError",
    "ProviderSettings",
    "RateLimitSettings",
    "RateLimited",
    "Registry",
    "ReleaseSettings",
    "RequestLogSettings",
    "RetryPolicy",
    "RouteCacheSettings",
    "RouteSettings",
    "ScannerSettings",
    "ServerSettings",
    "SettingError",
    "SignalMonitorSettings",
    "SpendSettings",
    "StoreSettings",
    "TelemetrySettings",
    "Timeouts",
    "TokenType",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "Usage",
    "UsageSource",
    "check_config",
    "effective_timeouts",
    "find_config",
    "load_settings",
]
