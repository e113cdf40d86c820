from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence

import pytest

from keel.core import BudgetExceeded, RateLimited
from keel.spend import (
    NO_LIMITS,
    BudgetWindow,
    Counters,
    InProcessCounters,
    LimitWindow,
    RedisCounters,
    SpendUnavailable,
    format_duration,
)
from tests.spend.conftest import make_budget, redis_counters, window

COST = 1_000


async def _reserve_many(counters: Counters, windows: list[BudgetWindow], n: int) -> tuple[int, int]:
    async def one() -> bool:
        try:
            await counters.reserve(windows, COST)
        except BudgetExceeded:
            return False
        return True

    results = await asyncio.gather(*[one() for _ in range(n)])
    return results.count(True), results.count(False)


async def test_concurrent_reservations_never_overshoot_a_hard_budget(counters: Counters) -> None:
    cap = window(make_budget(10 * COST))
    admitted, refused = await _reserve_many(counters, [cap], 100)
    assert (admitted, refused) == (10, 90)
    assert (await counters.read([cap]))[cap.key] == (0, 10 * COST)


async def test_two_processes_on_one_redis_share_one_cap(redis_prefix: str) -> None:
    first, second = redis_counters(redis_prefix), redis_counters(redis_prefix)
    budget = make_budget(25 * COST)
    cap = window(budget)
    try:
        results = await asyncio.gather(_reserve_many(first, [cap], 40), _reserve_many(second, [cap], 40))
        assert sum(admitted for admitted, _ in results) == 25
        assert (await second.read([cap]))[cap.key] == (0, 25 * COST)
    finally:
        await first.close()
        await second.close()


async def test_a_refusal_names_the_budget_and_reserves_nothing(counters: Counters) -> None:
    roomy = window(make_budget(100 * COST, scope="team", scope_id="t1"))
    tight = window(make_budget(COST // 2, scope="key", scope_id="key-7", period="day"))
    with pytest.raises(BudgetExceeded, match=r"daily budget of key 'key-7' is \$0.0000005") as refused:
        await counters.reserve([roomy, tight], COST)
    assert refused.value.status == 429 and refused.value.type == "insufficient_quota"
    assert await counters.read([roomy, tight]) == {roomy.key: (0, 0), tight.key: (0, 0)}


async def test_soft_budgets_admit_and_report_crossing_the_alert_and_the_limit(counters: Counters) -> None:
    soft = window(make_budget(4 * COST, hard=False, alert_at_fraction=0.5))
    flags = []
    for _ in range(6):
        (state,) = await counters.reserve([soft], COST)
        flags.append((state.alert_crossed, state.limit_crossed))
    assert flags == [
        (False, False),
        (True, False),
        (False, False),
        (False, False),
        (False, True),
        (False, False),
    ]
    assert state.remaining == -2 * COST


async def test_settle_releases_the_reservation_and_charges_the_actual_cost(counters: Counters) -> None:
    cap = window(make_budget(3 * COST))
    await counters.reserve([cap], 2 * COST)
    await counters.settle([cap], 2 * COST, COST // 2)
    assert (await counters.read([cap]))[cap.key] == (COST // 2, 0)
    (state,) = await counters.reserve([cap], 2 * COST)  # fits now: 0.5 spent + 2 reserved <= 3
    assert (state.spent, state.reserved, state.remaining) == (COST // 2, 2 * COST, COST // 2)


async def test_windows_not_held_are_loaded_from_the_ledger(counters: Counters) -> None:
    cap = window(make_budget(10 * COST))
    asked: list[str] = []

    async def loader(windows: Sequence[BudgetWindow]) -> Mapping[str, tuple[int, int]]:
        asked.extend(w.key for w in windows)
        return {cap.key: (7 * COST, 2 * COST)}

    counters.window_loader = loader
    admitted, _ = await _reserve_many(counters, [cap], 5)
    assert admitted == 1
    assert asked[0] == cap.key
    assert (await counters.read([cap]))[cap.key] == (7 * COST, 3 * COST)


async def test_rate_limit_takes_carry_openai_headers_then_refuse_with_retry_after(counters: Counters) -> None:
    limits = [LimitWindow("key:k1", rpm=3, tpm=1000), LimitWindow("model:m", rpm=100)]
    grants = [await counters.take(limits, tokens=100) for _ in range(3)]
    assert [g.headers["x-ratelimit-remaining-requests"] for g in grants] == ["2", "1", "0"]
    assert grants[0].headers["x-ratelimit-limit-requests"] == "3"
    assert grants[2].headers["x-ratelimit-remaining-tokens"] == "700"
    assert re.fullmatch(r"(\d+(\.\d+)?s|\d+ms)", grants[2].headers["x-ratelimit-reset-tokens"])
    with pytest.raises(RateLimited, match="3 requests per minute") as refused:
        await counters.take(limits, tokens=100)
    assert refused.value.retry_after is not None and 19 < refused.value.retry_after <= 20
    assert refused.value.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.value.headers["x-ratelimit-limit-requests"] == "3"


async def test_a_refused_take_takes_nothing_from_any_limit(counters: Counters) -> None:
    tight = LimitWindow("key:k1", tpm=100)
    roomy = LimitWindow("team:t1", rpm=10, tpm=10_000)
    await counters.take([tight], tokens=80)
    with pytest.raises(RateLimited, match="tokens per minute"):
        await counters.take([roomy, tight], tokens=50)
    grant = await counters.take([roomy], tokens=0)
    assert grant.headers["x-ratelimit-remaining-requests"] == "9"  # the refused take took none


async def test_a_call_larger_than_the_token_limit_is_refused_without_retry_after(counters: Counters) -> None:
    with pytest.raises(RateLimited, match="Request too large") as refused:
        await counters.take([LimitWindow("key:k1", tpm=100)], tokens=101)
    assert refused.value.retry_after is None


async def test_adjust_refunds_unused_tokens_and_charges_overuse(counters: Counters) -> None:
    limit = [LimitWindow("key:k1", tpm=1000)]
    grant = await counters.take(limit, tokens=900)
    await counters.adjust(grant, 100)
    await counters.adjust(grant, 100)  # once only
    assert (await counters.take(limit, tokens=500)).headers["x-ratelimit-remaining-tokens"] == "400"
    over = await counters.take(limit, tokens=100)
    await counters.adjust(over, 600)  # used 500 more than it took: the bucket goes below zero
    with pytest.raises(RateLimited) as refused:
        await counters.take(limit, tokens=1)
    assert refused.value.retry_after is not None and refused.value.retry_after > 12


async def test_no_limits_and_no_budgets_cost_nothing(counters: Counters) -> None:
    assert await counters.take([], tokens=10) is NO_LIMITS
    assert NO_LIMITS.headers == {}
    assert await counters.reserve([], COST) == []


async def test_in_process_buckets_refill_continuously() -> None:
    now = [0.0]
    counters = InProcessCounters(clock=lambda: now[0])
    limit = [LimitWindow("key:k1", rpm=60)]
    for _ in range(60):
        await counters.take(limit)
    with pytest.raises(RateLimited) as refused:
        await counters.take(limit)
    assert refused.value.retry_after == pytest.approx(1.0)
    now[0] = 2.5  # 2.5 requests back
    await counters.take(limit)
    grant = await counters.take(limit)
    assert grant.headers["x-ratelimit-remaining-requests"] == "0"
    assert grant.headers["x-ratelimit-reset-requests"] == "59.5s"


def test_reset_durations_read_like_openais() -> None:
    assert [format_duration(s) for s in (0.02, 1.5, 60, 360.25)] == ["20ms", "1.5s", "1m0s", "6m0.25s"]


async def test_unreachable_redis_fails_closed_with_a_clear_error() -> None:
    counters = RedisCounters.from_url("redis://127.0.0.1:1/0", timeout_s=0.5)
    cap = window(make_budget(COST))
    try:
        with pytest.raises(
            SpendUnavailable, match=r"Redis at redis://127\.0\.0\.1:1/0 is unreachable"
        ) as refused:
            await counters.reserve([cap], 1)
        assert refused.value.status == 503
        with pytest.raises(SpendUnavailable, match="on_redis_error is 'closed'"):
            await counters.take([LimitWindow("key:k1", rpm=1)])
    finally:
        await counters.close()


async def test_unreachable_redis_admits_when_configured_open(caplog: pytest.LogCaptureFixture) -> None:
    counters = RedisCounters.from_url("redis://127.0.0.1:1/0", on_error="open", timeout_s=0.5)
    try:
        assert await counters.reserve([window(make_budget(1))], 1_000) == []
        assert await counters.take([LimitWindow("key:k1", rpm=1)]) is NO_LIMITS
    finally:
        await counters.close()
    assert "admitting without budgets or limits" in caplog.text


async def test_create_counters_picks_redis_only_when_configured() -> None:
    from keel.core import SpendSettings
    from keel.spend import create_counters

    assert isinstance(create_counters(None, SpendSettings()), InProcessCounters)
    shared = create_counters("redis://127.0.0.1:1/0", SpendSettings(on_redis_error="open"))
    assert isinstance(shared, RedisCounters)
    await shared.close()
