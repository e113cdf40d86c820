"""The ``@provider`` registry and the factory that builds configured providers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from keel.core import ProviderSettings, Registry
from keel.providers._base import Provider

ProviderFactory = Callable[[str, ProviderSettings, Path], Provider]

providers: Registry[ProviderFactory] = Registry("provider")
provider = providers.register


def build_provider(name: str, settings: ProviderSettings, home: Path) -> Provider:
    """Build the provider instance configured as ``name`` (``home``: data directory)."""
    return providers.get(settings.type)(name, settings, home)
