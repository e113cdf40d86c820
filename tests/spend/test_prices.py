from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from keel.core import InvalidRequest, PriceSettings, SpendSettings, Usage
from keel.spend import Price, PriceTable, load_price_table, prices, set_price
from keel.store import audit_log, read_changes

NOW = datetime(2025, 11, 1, tzinfo=UTC)


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def test_model_ids_resolve_exactly_then_without_provider_then_by_alias_or_date() -> None:
    table = PriceTable.builtin()
    assert table.resolve("gpt-4o") == "gpt-4o"
    assert table.resolve("openai/gpt-4o") == "gpt-4o"
    assert table.resolve("gpt-4o-2024-08-06") == "gpt-4o"
    assert table.resolve("azure/gpt-4o-mini-2024-07-18") == "gpt-4o-mini"
    assert table.resolve("claude-3-5-sonnet-20241022") == "claude-3-5-sonnet"
    assert table.resolve("anthropic/claude-sonnet-4-0") == "claude-sonnet-4"
    assert table.resolve("claude-3-7-sonnet-latest") == "claude-3-7-sonnet"
    # A dated snapshot with a price of its own keeps it.
    assert table.resolve("gpt-4o-2024-05-13") == "gpt-4o-2024-05-13"
    assert table.resolve("keel-demo") is None
    assert table.cost("keel-demo", Usage(100, 0, 100), NOW) is None
    assert table.max_cost("keel-demo", 100, 100, NOW) == 0


def test_cost_is_exact_to_the_nano_and_rounds_up_once() -> None:
    table = PriceTable.builtin()
    # gpt-4o now: input 2.50, cached 1.25, output 10.00 USD / 1M (2500, 1250, 10000 nano-USD a token).
    assert table.cost("gpt-4o", Usage(1000, 200, 500), NOW) == 800 * 2500 + 200 * 1250 + 500 * 10000
    # gpt-4.1-nano cached input is 0.025 USD / 1M = 25 nano-USD a token.
    assert table.cost("gpt-4.1-nano", Usage(3, 1, 7), NOW) == 2 * 100 + 1 * 25 + 7 * 400
    # A price below a nano a token: the sum is exact and rounded up once per request.
    cheap = PriceTable([Price("tiny", "input", Decimal("0.0001"), at(2020, 1, 1), "api")])
    assert cheap.cost("tiny", Usage(1, 0, 0), NOW) == 1  # 0.1 nano rounds up to 1
    assert cheap.cost("tiny", Usage(10, 0, 0), NOW) == 1
    assert cheap.cost("tiny", Usage(11, 0, 0), NOW) == 2
    # A million calls of 1234 tokens cost what their exact sum says, within a nano each.
    exact = Decimal("0.0001") * 1000 * 1234
    assert cheap.cost("tiny", Usage(1234, 0, 0), NOW) == int(exact) + (exact % 1 > 0)


def test_cached_tokens_cost_input_price_when_the_model_has_no_cached_price() -> None:
    table = PriceTable([Price("m", "input", Decimal(2), at(2020, 1, 1), "api")])
    assert table.cost("m", Usage(10, 4, 0), NOW) == 10 * 2000


def test_max_cost_assumes_uncached_input_and_every_output_token() -> None:
    table = PriceTable.builtin()
    assert table.max_cost("gpt-4o-mini", 100, 4096, NOW) == 100 * 150 + 4096 * 600


def test_effective_dating_keeps_an_earlier_requests_cost() -> None:
    table = PriceTable.builtin()
    before, after = at(2024, 6, 1), at(2024, 11, 1)
    assert table.price_at("gpt-4o", "input", before) == Decimal("5.00")
    assert table.price_at("gpt-4o", "input", after) == Decimal("2.50")
    # A later override does not change what a request before it costs.
    overridden = table.with_prices([Price("gpt-4o", "input", Decimal(3), at(2025, 1, 1), "api")])
    usage = Usage(1000, 0, 0)
    assert overridden.cost("gpt-4o", usage, after) == table.cost("gpt-4o", usage, after) == 2_500_000
    assert overridden.cost("gpt-4o", usage, NOW) == 3_000_000


def test_config_overrides_builtin_and_stored_rows_override_config() -> None:
    config = PriceTable.from_settings(
        [PriceSettings(model="gpt-4o", token_type="output", usd_per_million=Decimal("9"))]
    )
    table = PriceTable.builtin().with_prices(config)
    # An undated keel.yaml price wins at every time, over every built-in row.
    assert table.price_at("gpt-4o", "output", at(2024, 6, 1)) == Decimal(9)
    assert table.price_at("gpt-4o", "output", NOW) == Decimal(9)
    stored = table.with_prices([Price("gpt-4o", "output", Decimal(8), at(2025, 6, 1), "api")])
    assert stored.price_at("gpt-4o", "output", at(2025, 5, 31)) == Decimal(9)
    assert stored.price_row_at("gpt-4o", "output", NOW) == Price(
        "gpt-4o", "output", Decimal(8), at(2025, 6, 1), "api"
    )
    assert {(p.token_type, p.source) for p in stored.in_force(NOW, "gpt-4o")} == {
        ("input", "builtin"),
        ("cached_input", "builtin"),
        ("output", "api"),
    }


def test_set_price_is_stored_audited_and_bumps_spend(engine: Engine) -> None:
    settings = SpendSettings(
        prices=[PriceSettings(model="m", token_type="input", usd_per_million=Decimal(1))]
    )
    set_price(
        engine,
        model="m",
        token_type="input",
        usd_per_million="1.5",
        effective_from=date(2025, 1, 1),
        actor="t",
    )
    table = load_price_table(engine, settings)
    assert table.price_at("m", "input", at(2024, 12, 31)) == Decimal(1)
    assert table.price_at("m", "input", NOW) == Decimal("1.5")
    assert read_changes(engine)["spend"] == 1
    with engine.connect() as connection:
        entry = connection.execute(select(audit_log).where(audit_log.c.action == "price.set")).one()
    assert entry.after["usd_per_million"] == "1.5"


@pytest.mark.parametrize(
    ("token_type", "amount", "message"),
    [
        ("reasoning", "1", "Unknown token type 'reasoning'"),
        ("input", "-1", "cannot be negative"),
        ("input", "x", "decimal"),
    ],
)
def test_bad_price_is_refused_and_nothing_is_written(
    engine: Engine, token_type: str, amount: str, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        set_price(engine, model="m", token_type=token_type, usd_per_million=amount, actor="t")
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(prices)).scalar_one() == 0
        assert connection.execute(select(func.count()).select_from(audit_log)).scalar_one() == 0
    assert "spend" not in read_changes(engine)
