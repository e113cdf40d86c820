"""Budget periods and their windows, in UTC: a day starts at midnight, a week on Monday,
a month on its first day; ``total`` is one window that never ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

Period = Literal["day", "week", "month", "total"]
PERIODS: tuple[Period, ...] = get_args(Period)

# The one window of a ``total`` budget.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_of(period: Period, at: datetime) -> tuple[datetime, datetime | None]:
    """The window of ``period`` that holds ``at``: (start, end), end excluded; ``total``
    has no end."""
    at = at.astimezone(UTC)
    if period == "total":
        return EPOCH, None
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
        return start, end
    raise ValueError(f"unknown budget period {period!r}")
