"""A streamed call is charged in the ledger exactly like the same unary call, whether the
upstream reports usage or the gateway has to count it; and a counted answer is never
charged beyond what its ``max_tokens`` lets the upstream produce (its reservation)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.e2e.harness import (
    FULL_COST,
    INPUT_NANOS,
    MAX_TOKENS,
    OUTPUT_NANOS,
    RESERVATION,
    Stack,
    chat_body,
    cost_of,
)
from tests.e2e.traffic import Outcome, stream, unary
from tests.fakes import Fault

pytestmark = pytest.mark.timeout(120)


async def _three_ways(stack: Stack, tag: str) -> list[Outcome]:
    """The same request unary, streamed, and streamed with usage asked for."""
    [gateway] = stack.gateways
    url, headers = gateway.chat_url, stack.headers
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        return [
            await unary(session, url, headers, chat_body(tag, "main", stream=False)),
            await stream(session, url, headers, chat_body(tag, "main", stream=True)),
            await stream(session, url, headers, chat_body(tag, "main", stream=True, include_usage=True)),
        ]


@pytest.mark.parametrize("upstream_usage", [True, False], ids=["usage-reported", "usage-counted"])
async def test_stream_and_unary_settle_the_same_amount(sqlite_stack: Stack, upstream_usage: bool) -> None:
    stack = sqlite_stack
    stack.set_key_budget(100 * RESERVATION)
    main = stack.deployments["main"]
    main.set_default(Fault(no_usage=not upstream_usage))
    await stack.start(1)
    outcomes = await _three_ways(stack, "t0001")
    await stack.gateways[0].stop()

    assert [o.result for o in outcomes] == ["ok"] * 3, outcomes
    settled = {r.request_id: r.amount_nanos for r in stack.ledger() if r.entry == "settle"}
    records = {r.id: r for r in stack.records()}
    charges = [settled[o.request_id] for o in outcomes if o.request_id is not None]
    assert len(charges) == 3 and len(set(charges)) == 1, charges
    assert all(records[o.request_id].cost_nanos == charges[0] for o in outcomes if o.request_id)
    sources = {records[o.request_id].usage_source for o in outcomes if o.request_id}
    if upstream_usage:
        assert sources == {"reported"}
        assert {cost_of(r.usage) for r in main.requests() if r.usage} == {charges[0]} == {FULL_COST}
    else:
        assert sources == {"estimated"}
        record = records[outcomes[0].request_id or ""]
        assert charges[0] == record.input_tokens * INPUT_NANOS + record.output_tokens * OUTPUT_NANOS > 0


async def test_a_counted_answer_is_charged_no_more_than_its_max_tokens_allow(sqlite_stack: Stack) -> None:
    # An upstream that reports no usage, answering in long words: the gateway's estimate
    # (four characters a token) comes to far more tokens than max_tokens lets a model
    # produce. The upstream stopped at max_tokens, so that is the most it can have cost,
    # and the most a hard budget may be charged: its reservation.
    stack = sqlite_stack
    limit = 3 * RESERVATION
    stack.set_key_budget(limit)
    long_words = " ".join(["x" * 60] * MAX_TOKENS)  # MAX_TOKENS words: not cut by the fake
    stack.deployments["main"].set_default(Fault(no_usage=True, reply=long_words))
    await stack.start(1)
    outcomes = await _three_ways(stack, "t0002")
    await stack.gateways[0].stop()

    assert [o.result for o in outcomes] == ["ok"] * 3, outcomes
    settles = [r for r in stack.ledger() if r.entry == "settle"]
    assert len(settles) == 3
    assert all(r.amount_nanos <= RESERVATION for r in settles), [r.amount_nanos for r in settles]
    assert sum(r.amount_nanos for r in settles) <= limit
    for record in stack.records():
        assert record.output_tokens <= MAX_TOKENS, record
