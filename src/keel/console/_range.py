"""The time range every page shows: a preset (1h, 24h, 7d, 30d) or a custom span, and
how it is cut into buckets for charts.

Buckets are whole UTC minutes, hours or days (the SQL groups by a truncated timestamp
text, which an index scan computes cheaply), several of them merged into one bucket
when the range is long, so that a chart has a few dozen bars, not thousands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from keel.core import InvalidRequest

Unit = Literal["minute", "hour", "day"]
PRESETS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_RANGE = "24h"
_UNIT_SECONDS: dict[Unit, int] = {"minute": 60, "hour": 3600, "day": 86400}
_MAX_BUCKETS = 60
_INPUT_FORMAT = "%Y-%m-%dT%H:%M"


@dataclass(frozen=True, slots=True)
class TimeRange:
    name: str  # a preset or "custom"
    since: datetime
    until: datetime
    unit: Unit  # what the SQL truncates timestamps to
    per_bucket: int  # how many units one chart bucket holds

    @property
    def bucket(self) -> timedelta:
        return timedelta(seconds=_UNIT_SECONDS[self.unit] * self.per_bucket)

    def bucket_starts(self) -> list[datetime]:
        """The start of every bucket from ``since`` to ``until`` (aligned to the unit)."""
        first = self.floor(self.since)
        out = []
        moment = first
        while moment < self.until:
            out.append(moment)
            moment += self.bucket
        return out

    def floor(self, moment: datetime) -> datetime:
        seconds = int(self.bucket.total_seconds())
        epoch = int(moment.timestamp())
        return datetime.fromtimestamp(epoch - epoch % seconds, UTC)

    def label(self, moment: datetime) -> str:
        if self.unit == "day":
            return moment.strftime("%m-%d")
        if self.until - self.since > timedelta(days=1):
            return moment.strftime("%m-%d %H:%M")
        return moment.strftime("%H:%M")

    def query(self) -> dict[str, str]:
        """The URL parameters that ask for this range again."""
        if self.name != "custom":
            return {"range": self.name}
        return {
            "range": "custom",
            "from": self.since.strftime(_INPUT_FORMAT),
            "to": self.until.strftime(_INPUT_FORMAT),
        }

    @property
    def from_input(self) -> str:
        return self.since.strftime(_INPUT_FORMAT)

    @property
    def to_input(self) -> str:
        return self.until.strftime(_INPUT_FORMAT)


def parse_range(params: Mapping[str, str], now: datetime | None = None) -> TimeRange:
    """The range a page's query string asks for (``range``, and ``from``/``to`` in UTC
    for ``custom``); 24h by default."""
    now = now or datetime.now(UTC)
    name = params.get("range") or DEFAULT_RANGE
    if name in PRESETS:
        since, until = now - PRESETS[name], now
    elif name == "custom":
        since = _moment(params.get("from"), "from")
        until = _moment(params.get("to"), "to") if params.get("to") else now
        if until <= since:
            raise InvalidRequest("The end of the range must be after its start.", param="to")
    else:
        raise InvalidRequest(
            f"Unknown range {name!r}: expected one of {', '.join(PRESETS)} or custom.", param="range"
        )
    unit, per_bucket = _granularity(until - since)
    return TimeRange(name, since, until, unit, per_bucket)


def _moment(text: str | None, param: str) -> datetime:
    if not text:
        raise InvalidRequest(f"A custom range needs '{param}' (YYYY-MM-DDTHH:MM, UTC).", param=param)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"'{param}' must look like 2026-11-25T14:30, not {text!r}.", param=param
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_STEPS: tuple[tuple[Unit, int], ...] = (
    ("minute", 1),
    ("minute", 5),
    ("minute", 15),
    ("minute", 30),
    ("hour", 1),
    ("hour", 3),
    ("hour", 6),
    ("hour", 12),
    ("day", 1),
)


def _granularity(span: timedelta) -> tuple[Unit, int]:
    seconds = span.total_seconds()
    for unit, per_bucket in _STEPS:
        if seconds / (_UNIT_SECONDS[unit] * per_bucket) <= _MAX_BUCKETS:
            return unit, per_bucket
    return "day", int(seconds // 86400 // _MAX_BUCKETS) + 1
