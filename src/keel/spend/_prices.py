"""The effective-dated price table and the cost of a request in nano-USD.

Prices come in three layers: the built-in table (``keel/data/prices.yaml``), keel.yaml
(``spend.prices``) and rows set through the admin API or CLI (the ``prices`` table). At a
given time the highest layer that has a price in force wins; within a layer the latest
``effective_from`` not after that time does. A ``PriceTable`` is immutable: a reload builds
a new one and swaps it in, so the request path reads it without locks.

Money is integer nano-USD (``Nanos``). A price of P USD per 1M tokens is P*1000 nano-USD
per token; a request's cost sums its token types exactly (``Decimal``) and rounds up to
the nano once, so that recorded spend is never below the true figure.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from functools import lru_cache
from importlib import resources
from typing import Any, Literal, get_args

import yaml

from keel.core import InvalidRequest, PriceSettings, TokenType, Usage

Nanos = int
PriceSource = Literal["builtin", "config", "api"]
TOKEN_TYPES: tuple[TokenType, ...] = get_args(TokenType)

# A price "in force from the beginning" (the first row of a built-in model, a keel.yaml
# override without a date).
ALWAYS = datetime(1970, 1, 1, tzinfo=UTC)

# Highest first: what an operator sets beats what keel.yaml says beats what Keel ships.
_LAYER_ORDER: tuple[PriceSource, ...] = ("api", "config", "builtin")
_NANOS_PER_USD_PER_MILLION = Decimal(1000)
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


@dataclass(frozen=True, slots=True)
class Price:
    """One price row: USD per 1M tokens of ``token_type``, in force from ``effective_from``."""

    model: str
    token_type: TokenType
    usd_per_million: Decimal
    effective_from: datetime
    source: PriceSource


def parse_token_type(value: str) -> TokenType:
    if value not in TOKEN_TYPES:
        raise InvalidRequest(
            f"Unknown token type {value!r}: expected one of {', '.join(TOKEN_TYPES)}.", param="token_type"
        )
    return value


def parse_usd(value: object, *, param: str = "usd_per_million") -> Decimal:
    """A non-negative decimal amount of USD (a string, int or Decimal; floats go through
    their shortest text form)."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidRequest(f"{param} must be a decimal number, got {value!r}.", param=param) from None
    if not amount.is_finite():
        raise InvalidRequest(f"{param} must be a finite number, got {value!r}.", param=param)
    if amount < 0:
        raise InvalidRequest(f"{param} cannot be negative, got {value}.", param=param)
    return amount


def usd_to_nanos(usd: Decimal) -> Nanos:
    """Whole nano-USD, rounded up."""
    return int((usd * 1_000_000_000).to_integral_value(rounding=ROUND_CEILING))


def nanos_to_usd(nanos: Nanos) -> Decimal:
    """Exact USD (nine decimal places)."""
    return Decimal(nanos).scaleb(-9)


def format_usd(nanos: Nanos) -> str:
    """USD as plain text without trailing zeros: ``0.00725``, ``10``."""
    return format(nanos_to_usd(nanos).normalize(), "f")


def _as_moment(value: date | datetime | None) -> datetime:
    if value is None:
        return ALWAYS
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


class _Timeline:
    """The price of one model and token type over time, the layers already merged: a
    sorted list of (start, nano-USD per token)."""

    __slots__ = ("_rates", "_rows", "_starts")

    def __init__(self, rows: list[Price]) -> None:
        by_layer = {
            layer: sorted((r for r in rows if r.source == layer), key=lambda r: r.effective_from)
            for layer in _LAYER_ORDER
        }
        starts = sorted({r.effective_from for r in rows})
        self._starts: list[datetime] = []
        self._rates: list[int | Decimal] = []
        self._rows: list[Price] = []
        for start in starts:
            row = _in_force(by_layer, start)
            assert row is not None  # every start is some row's own
            if self._rows and self._rows[-1] is row:
                continue
            self._starts.append(start)
            self._rates.append(_rate(row.usd_per_million))
            self._rows.append(row)

    def row_at(self, at: datetime) -> Price | None:
        index = bisect.bisect_right(self._starts, at) - 1
        return self._rows[index] if index >= 0 else None

    def rate_at(self, at: datetime) -> int | Decimal | None:
        index = bisect.bisect_right(self._starts, at) - 1
        return self._rates[index] if index >= 0 else None


def _in_force(by_layer: Mapping[PriceSource, list[Price]], at: datetime) -> Price | None:
    for layer in _LAYER_ORDER:
        found = None
        for row in by_layer[layer]:
            if row.effective_from > at:
                break
            found = row
        if found is not None:
            return found
    return None


def _rate(usd_per_million: Decimal) -> int | Decimal:
    """Nano-USD per token; an int when whole, so that most costs are integer sums."""
    rate = usd_per_million * _NANOS_PER_USD_PER_MILLION
    return int(rate) if rate == rate.to_integral_value() else rate


class PriceTable:
    """Prices by model and token type over time (see the module docstring)."""

    def __init__(self, prices: Iterable[Price], aliases: Mapping[str, str] | None = None) -> None:
        grouped: dict[str, dict[TokenType, list[Price]]] = {}
        self._prices = list(prices)
        for row in self._prices:
            grouped.setdefault(row.model, {}).setdefault(row.token_type, []).append(row)
        self._timelines = {
            model: {token_type: _Timeline(rows) for token_type, rows in types.items()}
            for model, types in grouped.items()
        }
        self._aliases = dict(aliases or {})
        self._resolved: dict[str, str | None] = {}

    # -- construction -------------------------------------------------------------------

    @classmethod
    def builtin(cls) -> PriceTable:
        return cls(*_builtin())

    def with_prices(self, prices: Iterable[Price]) -> PriceTable:
        """This table with more rows (config or stored overrides)."""
        return PriceTable([*self._prices, *prices], self._aliases)

    @staticmethod
    def from_settings(settings: Iterable[PriceSettings]) -> list[Price]:
        return [
            Price(p.model, p.token_type, p.usd_per_million, _as_moment(p.effective_from), "config")
            for p in settings
        ]

    # -- lookup -------------------------------------------------------------------------

    def resolve(self, model: str) -> str | None:
        """The model id prices are kept under for ``model``, or None when unpriced."""
        try:
            return self._resolved[model]
        except KeyError:
            pass
        found = None
        for candidate in self._candidates(model):
            if candidate in self._timelines:
                found = candidate
                break
        if len(self._resolved) < 10_000:  # model ids come from clients: bound the memo
            self._resolved[model] = found
        return found

    def _candidates(self, model: str) -> Iterable[str]:
        yield model
        bare = model.rsplit("/", 1)[-1]
        for name in (model, bare) if bare != model else (model,):
            if name != model:
                yield name
            if name in self._aliases:
                yield self._aliases[name]
            undated = _DATE_SUFFIX.sub("", name)
            if undated != name:
                yield undated
                if undated in self._aliases:
                    yield self._aliases[undated]

    def price_at(self, model: str, token_type: TokenType, at: datetime) -> Decimal | None:
        """USD per 1M tokens of ``token_type`` for ``model`` at ``at`` (None: no price)."""
        row = self.price_row_at(model, token_type, at)
        return row.usd_per_million if row is not None else None

    def price_row_at(self, model: str, token_type: TokenType, at: datetime) -> Price | None:
        name = self.resolve(model)
        if name is None:
            return None
        timeline = self._timelines[name].get(token_type)
        return timeline.row_at(_as_moment(at)) if timeline is not None else None

    def is_priced(self, model: str) -> bool:
        return self.resolve(model) is not None

    def cost(self, model: str, usage: Usage, at: datetime) -> Nanos | None:
        """What ``usage`` of ``model`` costs at ``at``, rounded up to the nano; None when the
        model has no price (such calls are free but reported as unpriced).

        ``usage.input_tokens`` includes the cached ones, which are billed at the cached
        input price (at the input price when the model has none)."""
        name = self.resolve(model)
        if name is None:
            return None
        cached = min(max(usage.cached_input_tokens, 0), max(usage.input_tokens, 0))
        return self._cost(name, max(usage.input_tokens, 0) - cached, cached, max(usage.output_tokens, 0), at)

    def max_cost(self, model: str, input_tokens: int, max_output_tokens: int, at: datetime) -> Nanos:
        """The most a call can cost: every input token uncached, every allowed output token
        generated (0 for an unpriced model)."""
        name = self.resolve(model)
        if name is None:
            return 0
        return self._cost(name, max(input_tokens, 0), 0, max(max_output_tokens, 0), at)

    def _cost(self, name: str, uncached: int, cached: int, output: int, at: datetime) -> Nanos:
        timelines = self._timelines[name]
        at = _as_moment(at)
        input_rate = _rate_of(timelines, "input", at)
        cached_rate = _rate_of(timelines, "cached_input", at) if cached else None
        if cached_rate is None:
            cached_rate = input_rate
        output_rate = _rate_of(timelines, "output", at) if output else 0
        total = uncached * (input_rate or 0) + cached * (cached_rate or 0) + output * (output_rate or 0)
        if isinstance(total, int):
            return total
        return int(total.to_integral_value(rounding=ROUND_CEILING))

    # -- listing ------------------------------------------------------------------------

    def rows(self) -> list[Price]:
        """Every row of every layer, as given."""
        return list(self._prices)

    def in_force(self, at: datetime, model: str | None = None) -> list[Price]:
        """The price of each model and token type in force at ``at``, sorted by model."""
        at = _as_moment(at)
        names = sorted(self._timelines) if model is None else [n for n in [self.resolve(model)] if n]
        out = []
        for name in names:
            for token_type in TOKEN_TYPES:
                timeline = self._timelines[name].get(token_type)
                row = timeline.row_at(at) if timeline is not None else None
                if row is not None:
                    out.append(row)
        return out


def _rate_of(
    timelines: Mapping[TokenType, _Timeline], token_type: TokenType, at: datetime
) -> int | Decimal | None:
    timeline = timelines.get(token_type)
    return timeline.rate_at(at) if timeline is not None else None


@lru_cache(maxsize=1)
def _builtin() -> tuple[tuple[Price, ...], dict[str, str]]:
    text = resources.files("keel").joinpath("data", "prices.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    prices: list[Price] = []
    for model, entries in document["models"].items():
        for entry in entries:
            start = _as_moment(entry.get("from"))
            for token_type in TOKEN_TYPES:
                if token_type in entry:
                    prices.append(Price(model, token_type, parse_usd(entry[token_type]), start, "builtin"))
    return tuple(prices), dict(document.get("aliases") or {})
