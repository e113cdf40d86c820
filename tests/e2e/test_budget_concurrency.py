"""A hard budget holds under concurrency, in one gateway process and across two.

A key's total budget covers exactly N requests (N reservations; a whole answer costs a
little less than its reservation). 10*N calls arrive at once: unary and streamed, some
abandoned by their client midway (a stream after three chunks, a unary call while the
upstream still thinks), some meeting upstream 500s that the gateway retries. Then calls
go one at a time until the budget refuses. At most N calls get a whole answer, the
budget is never exceeded, and the spend recorded in the ledger and in the request log
is, to the nano, what the upstream's own token count of every answer costs (for an
abandoned stream: what the gateway relayed before the client left, counted by the
gateway, which is never more than the upstream composed).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import aiohttp
import pytest

from tests.e2e.harness import (
    FULL_COST,
    INPUT_NANOS,
    OUTPUT_NANOS,
    RESERVATION,
    Gateway,
    Stack,
    chat_body,
    cost_of,
    tag_of,
    wait_until,
)
from tests.e2e.traffic import LeaveWhen, Outcome, abandoned_unary, stream, unary
from tests.fakes import Fault, ReceivedRequest

pytestmark = pytest.mark.timeout(180)

N = 8
# Upstream 500s at the start of the "main" deployment; the gateway retries each.
FAILURES = 3
# What the calls of the storm do, by index modulo 8.
PLANS = ("unary", "stream-usage", "stream-cancel", "unary-cancel", "unary", "stream", "unary", "stream-usage")


def test_a_full_answer_costs_just_under_its_reservation() -> None:
    # What the budget arithmetic below rests on: N whole answers fit in N reservations,
    # and N+1 never do, even counting what N answers leave unspent.
    assert FULL_COST < RESERVATION
    assert N * (RESERVATION - FULL_COST) < FULL_COST


async def _call(
    session: aiohttp.ClientSession,
    stack: Stack,
    gateway: Gateway,
    index: int,
    plan: str,
    leave_when: LeaveWhen = None,
) -> Outcome:
    tag = f"t{index:04d}"
    url, headers = gateway.chat_url, stack.headers
    if plan == "unary":
        return await unary(session, url, headers, chat_body(tag, "main", stream=False))
    if plan in ("stream", "stream-usage"):
        raw = chat_body(tag, "main", stream=True, include_usage=plan == "stream-usage")
        return await stream(session, url, headers, raw)
    if plan == "stream-cancel":
        raw = chat_body(tag, "stall", stream=True)
        return await stream(session, url, headers, raw, close_after_chunks=3, leave_when=leave_when)
    assert plan == "unary-cancel"
    raw = chat_body(tag, "hang", stream=False)
    hang = stack.deployments["hang"]
    return await abandoned_unary(session, url, headers, raw, hang, leave_when=leave_when)


def _all_settled(stack: Stack) -> bool:
    rows = stack.ledger()
    return {r.reservation_id for r in rows if r.entry == "reserve"} == {
        r.reservation_id for r in rows if r.entry == "settle"
    }


def _by_tag(requests: list[ReceivedRequest]) -> dict[str, list[ReceivedRequest]]:
    out: dict[str, list[ReceivedRequest]] = defaultdict(list)
    for request in requests:
        tag = tag_of(request.json)
        assert tag is not None
        out[tag].append(request)
    return out


def _expected_cost(record: Any, calls: list[ReceivedRequest]) -> int:
    """What the call should have been charged, from the upstream's side; checks on the way
    that the record is consistent with what the upstream saw."""
    answered = [c for c in calls if c.status == 200]
    if record.usage_source == "reported":
        # Metered from the upstream's own usage: exactly its count.
        assert len(answered) == 1, (record.id, calls)
        assert answered[0].usage is not None
        return cost_of(answered[0].usage)
    if record.usage_source is not None:
        # Counted by the gateway: only a stream whose client left before the upstream's
        # usage arrived, charged for what it relayed, never more than the upstream composed.
        assert record.stream and record.status == 499, record
        assert len(answered) == 1 and answered[0].usage is not None
        assert answered[0].cancelled, "the gateway stops the upstream stream when its client leaves"
        assert 0 < record.output_tokens <= answered[0].usage["completion_tokens"]
        return int(record.input_tokens * INPUT_NANOS + record.output_tokens * OUTPUT_NANOS)
    # No answer: a unary call its client left while the upstream still thought.
    assert record.status == 499 and not answered, record
    assert calls and all(c.cancelled for c in calls), "the gateway cancels the upstream call"
    return 0


@pytest.mark.parametrize(
    ("stack", "processes"),
    [("sqlite", 1), pytest.param("shared", 2, marks=pytest.mark.postgres)],
    indirect=["stack"],
    ids=["one-process-sqlite", "two-processes-postgres-redis"],
)
async def test_budget_holds_under_concurrency(stack: Stack, processes: int) -> None:
    limit = N * RESERVATION
    stack.set_key_budget(limit)
    main, hang, stall = (stack.deployments[route] for route in ("main", "hang", "stall"))
    main.script(*[Fault(status=500) for _ in range(FAILURES)])
    main.set_default(Fault(chunk_delay=0.01))
    hang.set_default(Fault(delay=60))  # never answers before its client leaves
    stall.set_default(Fault(stall_after_chunks=3, stall=60))
    gateways = await stack.start(processes)

    def storm_under_way() -> bool:
        return bool(main.requests())

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=90)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Which calls of a burst the budget admits depends on the order they arrive in.
        # So that abandoned calls are surely among them, in each process, one of each
        # kind per process goes first and holds its reservation until the rest of the
        # storm is under way; then it leaves, and what it did not spend is free again.
        early_plans = ["unary-cancel"] * processes + ["stream-cancel"] * processes
        early = [
            asyncio.create_task(
                _call(session, stack, gateways[i % processes], i, plan, leave_when=storm_under_way)
            )
            for i, plan in enumerate(early_plans)
        ]
        await wait_until(
            lambda: len(hang.requests()) == len(stall.requests()) == processes, 60, "the first calls"
        )
        storm = await asyncio.gather(
            *early,
            *(
                _call(session, stack, gateways[i % processes], i, PLANS[i % len(PLANS)])
                for i in range(len(early), 10 * N)
            ),
        )
        # Then one call at a time until the budget refuses: what the storm left unspent
        # (refusals while others held reservations, abandoned calls) is usable, but only
        # up to N whole answers in all. Each call waits until the calls before it are
        # settled (a gateway settles just after its client has the answer, and notices a
        # client that left a moment after it did), so a refusal means the budget is spent.
        after: list[Outcome] = []
        for i in range(10 * N, 11 * N + 1):
            await wait_until(lambda: _all_settled(stack), 60, "every reservation settled")
            raw = chat_body(f"t{i:04d}", "main", stream=False)
            after.append(await unary(session, gateways[i % processes].chat_url, stack.headers, raw))
            if after[-1].result != "ok":
                break
    for gateway in gateways:
        await gateway.stop()

    outcomes = [*storm, *after]
    assert not [o for o in outcomes if o.result == "error"], [o for o in outcomes if o.result == "error"]
    answered = [o for o in outcomes if o.result == "ok"]
    assert len(answered) <= N, f"{len(answered)} calls answered on a budget of {N}"
    assert after[-1].result == "refused", after[-1]
    assert answered and any(o.result == "refused" for o in storm)

    # The ledger: every reservation the one amount, every one settled by its process.
    rows = stack.ledger()
    reserves = {r.reservation_id: r for r in rows if r.entry == "reserve"}
    settles = {r.reservation_id: r for r in rows if r.entry == "settle"}
    assert reserves and set(settles) == set(reserves)
    assert {r.amount_nanos for r in reserves.values()} == {RESERVATION}
    assert not [r for r in settles.values() if r.recovered], "a graceful stop leaves nothing to recover"
    assert len({r.instance_id for r in reserves.values()}) == processes, "every process took calls"
    spent = sum(r.amount_nanos for r in settles.values())
    assert spent <= limit, f"budget exceeded: {spent} > {limit}"
    # ... and the calls refused were refused for want of budget: at the end less than
    # one reservation is left.
    assert spent > limit - RESERVATION

    # The request log: one record per call, each charged exactly what the ledger settled.
    assert stack.key is not None
    records = [r for r in stack.records() if r.key_id == stack.key.key.id]
    by_tag = {tag_of(r.request_body) or "": r for r in records}
    assert len(by_tag) == len(records) and set(by_tag) == {o.tag for o in outcomes}
    settled_by_request = {settles[rid].request_id: settles[rid].amount_nanos for rid in settles}
    assert len(settled_by_request) == len(settles)
    upstream = _by_tag(stack.upstream_requests())
    expected_total = 0
    for tag, record in by_tag.items():
        calls = upstream.get(tag, [])
        if record.id not in settled_by_request:
            # Refused by the budget: nothing reserved, nothing sent upstream.
            assert record.status == 429 and record.error_type == "insufficient_quota", record
            assert not calls and record.cost_nanos is None
            continue
        assert settled_by_request[record.id] == (record.cost_nanos or 0), record
        expected = _expected_cost(record, calls)
        assert (record.cost_nanos or 0) == expected, (record, calls)
        expected_total += expected
    logged = sum(r.cost_nanos or 0 for r in records)
    assert spent == logged == expected_total
    whole = [r for r in records if r.status == 200 and r.error_type is None]
    assert len(whole) == len(answered)
    assert all(r.usage_source == "reported" for r in whole)

    # Every kind of call happened: retried 500s, abandoned streams and unary calls.
    assert len([c for c in main.requests() if c.status == 500]) == FAILURES
    assert any(r.attempts > 1 for r in whole), "a call that met 500s was retried and answered"
    abandoned = [o for o in storm if o.result == "cancelled"]
    assert len([o for o in abandoned if o.plan == "stream-cancel"]) >= processes
    assert len([o for o in abandoned if o.plan == "unary-cancel"]) >= processes
