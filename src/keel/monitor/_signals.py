"""``@signal``: what is measured about each request, and the registry of signals.

A signal has a data kind (numeric, categorical, embedding) and a source:

``columns``  computed for every request from request_log columns, vectorised: the
             function gets a mapping of column name to numpy array (one entry per
             request) and returns one value per request (NaN / None: not measured).
``bodies``   computed on a sample of requests from their logged bodies: the function
             gets a ``LoggedRequest`` and returns a number, a category, or (embedding
             signals) the text to embed; None when it does not apply.
``events``   observations that live in another table (feedback scores, once the
             feedback table exists): the function gets a connection and a time range
             and yields ``Event``s. It is how a later package adds a signal without
             touching the aggregator.

Numeric signals declare fixed histogram bins (``binning``); a signal may name the
detector (and its settings) that suits it better than the default by data type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from sqlalchemy import Connection

from keel.core import NotFound
from keel.monitor._binning import Binning
from keel.monitor._types import DataKind

SignalSource = Literal["columns", "bodies", "events"]

# The request_log columns a ``columns`` signal may read.
LOG_COLUMNS = (
    "status",
    "error_type",
    "latency_ms",
    "ttft_ms",
    "input_tokens",
    "output_tokens",
    "cost_nanos",
    "cache_status",
    "guards",
)


@dataclass(frozen=True, slots=True)
class Group:
    """Who a request belongs to: its route, prompt version (``name@3``, "" for none) and
    the model (deployment) that answered ("" when none did)."""

    route: str
    prompt: str = ""
    model: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    """One observation of an ``events`` signal."""

    at: datetime
    group: Group
    value: float | str
    ref: str = ""


@dataclass
class LoggedRequest:
    """One sampled request with its bodies; the texts are parsed once, on first use."""

    id: str
    created_at: datetime
    status: int
    request_body: str | None
    response_body: str | None

    @cached_property
    def request(self) -> Mapping[str, Any]:
        return _parse(self.request_body)

    @cached_property
    def response(self) -> Mapping[str, Any]:
        return _parse(self.response_body)

    @cached_property
    def input_text(self) -> str | None:
        """The last user message (or prompt / embedding input): what was asked."""
        body = self.request
        messages = body.get("messages")
        if isinstance(messages, list):
            for message in reversed(messages):
                if isinstance(message, Mapping) and message.get("role") == "user":
                    return _text_of(message.get("content"))
        for key in ("prompt", "input"):
            value = body.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                return "\n".join(value)
        return None

    @cached_property
    def output_text(self) -> str | None:
        """The first choice's text (chat message content or completion text)."""
        choices = self.response.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
            return None
        choice = choices[0]
        message = choice.get("message")
        if isinstance(message, Mapping):
            return _text_of(message.get("content"))
        text = choice.get("text")
        return text if isinstance(text, str) else None


def _parse(body: str | None) -> Mapping[str, Any]:
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:  # a truncated body is not JSON: no text signals for it
        return {}
    return parsed if isinstance(parsed, Mapping) else {}


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
        texts = [p for p in parts if isinstance(p, str)]
        return "\n".join(texts) if texts else None
    return None


ColumnsFunction = Callable[[Mapping[str, Any]], Any]
BodiesFunction = Callable[[LoggedRequest], float | str | None]
EventsFunction = Callable[[Connection, datetime, datetime], Iterable[Event]]


@dataclass(frozen=True)
class SignalSpec:
    name: str
    kind: DataKind
    source: SignalSource
    compute: Callable[..., Any]
    description: str
    binning: Binning | None = None
    # The detector that suits this signal better than the default by kind and size.
    detector: str | None = None
    # This signal's own thresholds: settings per detector name
    # (``{"jensen_shannon": {"threshold": 0.05}}``), used whichever detector runs.
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


_SIGNALS: dict[str, SignalSpec] = {}


def signal(
    name: str,
    *,
    kind: DataKind,
    source: SignalSource = "columns",
    binning: Binning | None = None,
    detector: str | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a signal (``@signal("latency_ms", kind="numeric", binning=...)``)."""
    if kind == "numeric" and binning is None:
        raise ValueError(f"numeric signal {name!r} needs a binning")

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        spec = SignalSpec(
            name,
            kind,
            source,
            function,
            description or (function.__doc__ or name).strip().splitlines()[0],
            binning,
            detector,
            dict(settings or {}),
        )
        existing = _SIGNALS.get(name)
        if existing is not None and existing.compute is not function:
            raise ValueError(f"signal {name!r} is already registered")
        _SIGNALS[name] = spec
        return function

    return decorate


def _load_builtins() -> None:
    from keel.monitor import _signals_builtin  # noqa: F401  (registers on import)


def signals() -> list[SignalSpec]:
    """Every registered signal, by name."""
    _load_builtins()
    return [_SIGNALS[name] for name in sorted(_SIGNALS)]


def get_signal(name: str) -> SignalSpec:
    _load_builtins()
    try:
        return _SIGNALS[name]
    except KeyError:
        known = ", ".join(sorted(_SIGNALS))
        raise NotFound(f"unknown signal {name!r} (known: {known})") from None


def unregister_signal(name: str) -> None:
    """For tests that register a signal of their own."""
    _SIGNALS.pop(name, None)
