"""Keel: a self-hosted LLMOps platform."""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from keel.client import PromptClient

__all__ = ["PromptClient", "__version__"]


def __getattr__(name: str) -> Any:
    # ``import keel`` stays light: the client (and what it imports) loads on first use.
    if name == "PromptClient":
        from keel.client import PromptClient

        return PromptClient
    raise AttributeError(f"module 'keel' has no attribute {name!r}")
