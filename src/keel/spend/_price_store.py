"""Price rows set through the admin API or CLI (the ``prices`` table), and loading the
whole price table: built-in, then keel.yaml, then these rows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, insert, select

from keel.core import InvalidRequest, SpendSettings
from keel.spend._prices import Price, PriceTable, parse_token_type, parse_usd
from keel.spend._tables import prices
from keel.store import append_audit, bump_change

CHANGE_TOPIC = "spend"


def stored_prices(connection: Connection) -> list[Price]:
    rows = connection.execute(select(prices).order_by(prices.c.effective_from, prices.c.id))
    return [
        Price(r.model, parse_token_type(r.token_type), Decimal(r.usd_per_million), r.effective_from, "api")
        for r in rows
    ]


def load_price_table(engine: Engine | None, settings: SpendSettings) -> PriceTable:
    """Built-in prices, overridden by ``settings.prices``, overridden by stored rows.
    Blocking: call it off the event loop."""
    table = PriceTable.builtin().with_prices(PriceTable.from_settings(settings.prices))
    if engine is None:
        return table
    with engine.connect() as connection:
        return table.with_prices(stored_prices(connection))


def set_price(
    engine: Engine,
    *,
    model: str,
    token_type: str,
    usd_per_million: object,
    effective_from: date | datetime | None = None,
    actor: str,
) -> Price:
    """Add a price row in force from ``effective_from`` (default: now). Earlier requests
    keep the cost recorded with them. Audited; bumps the ``spend`` change topic."""
    model = model.strip()
    if not model or len(model) > 255:
        raise InvalidRequest("model must be a non-empty id of at most 255 characters.", param="model")
    kind = parse_token_type(token_type)
    amount = parse_usd(usd_per_million)
    start = _moment(effective_from)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(prices).values(
                model=model,
                token_type=kind,
                usd_per_million=str(amount),
                effective_from=start,
                created_at=now,
                created_by=actor[:255],
            )
        )
        append_audit(
            connection,
            actor=actor,
            action="price.set",
            target_type="price",
            target_id=f"{model}:{kind}",
            after={
                "model": model,
                "token_type": kind,
                "usd_per_million": str(amount),
                "effective_from": start.isoformat(),
            },
        )
        bump_change(connection, CHANGE_TOPIC)
    return Price(model, kind, amount, start, "api")


def _moment(value: date | datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)
