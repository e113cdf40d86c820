"""What calls cost, through a real gateway: prices from settings, the request log's cost,
streamed and whole answers charged alike, hard budgets, the usage report."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.fakes import FakeDeployment, Fault
from tests.gateway.conftest import GatewayFactory, RunningGateway
from tests.streams import stream_text_and_usage

from keel.core import AccessSettings, PriceSettings, SpendSettings

# Nano-USD per token: USD per 1M tokens x 1000.
INPUT_NANOS, OUTPUT_NANOS = 1500, 6000
PRICED = SpendSettings(
    prices=[
        PriceSettings(model="fake-chat", token_type="input", usd_per_million=Decimal("1.5")),
        PriceSettings(model="fake-chat", token_type="output", usd_per_million=Decimal("6")),
    ]
)
MESSAGES = [{"role": "user", "content": "how much is this"}]


def settled_status(admin: Any, budget_id: str, timeout: float = 5.0) -> dict[str, Any]:
    """The budget's status once no reservation is open: settlement rows are written
    shortly after the answer (batched), not before it."""
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = admin.get(f"/budgets/{budget_id}")
        if status["reserved_nanos"] == 0 or time.monotonic() > deadline:
            return status
        time.sleep(0.02)


def _priced(gateway_factory: GatewayFactory, upstream: FakeDeployment, **kwargs: Any) -> RunningGateway:
    return gateway_factory({"gpt-test": [upstream]}, spend=PRICED, **kwargs)


def _price_of(usage: dict[str, int]) -> int:
    return usage["prompt_tokens"] * INPUT_NANOS + usage["completion_tokens"] * OUTPUT_NANOS


def test_the_request_log_holds_the_cost_of_the_upstream_usage_at_the_configured_price(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = _priced(gateway_factory, upstream)
    gw.client().chat.completions.create(model="gpt-test", messages=MESSAGES)
    served = upstream.last_request.usage
    assert served is not None
    [record] = gw.records()
    assert record.cost_nanos == _price_of(served) == 4 * INPUT_NANOS + 5 * OUTPUT_NANOS


def test_an_unstreamed_answer_says_what_it_cost_in_a_header(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = _priced(gateway_factory, upstream)
    raw = gw.client().chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
    [record] = gw.records()
    assert record.cost_nanos is not None
    assert Decimal(raw.headers["x-keel-cost-usd"]) == Decimal(record.cost_nanos) / Decimal(10**9)
    unpriced = gateway_factory({"gpt-test": [upstream]})
    raw = unpriced.client().chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
    assert "x-keel-cost-usd" not in raw.headers


def test_an_unpriced_model_costs_nothing_recorded(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory({"gpt-test": [upstream]})
    gw.client().chat.completions.create(model="gpt-test", messages=MESSAGES)
    [record] = gw.records()
    assert record.cost_nanos is None
    assert record.input_tokens == 4


def _word_tokenizer(directory: Path) -> str:
    """A tokenizer.json that makes every word and punctuation mark one token."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(["echo"], trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    path = directory / "tokenizer.json"
    tokenizer.save(str(path))
    return str(path)


@pytest.mark.parametrize("usage_source", ["reported", "counted", "estimated"])
async def test_a_stream_is_charged_exactly_like_the_same_whole_answer(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, tmp_path: Path, usage_source: str
) -> None:
    # reported: upstream sends usage; counted: it does not, and the route has a tokenizer;
    # estimated: neither (four characters a token).
    options = {"tokenizer": _word_tokenizer(tmp_path)} if usage_source == "counted" else {}
    gw = _priced(gateway_factory, upstream, route_options={"gpt-test": options})
    if usage_source != "reported":
        upstream.set_default(Fault(no_usage=True))
    client = gw.async_client()
    whole = await client.chat.completions.create(model="gpt-test", messages=MESSAGES, user="whole")
    # Without include_usage the client sees no usage; Keel asks upstream for it anyway.
    stream = await client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True, user="streamed"
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    await client.close()
    assert text == whole.choices[0].message.content == "echo: how much is this"
    records = {r.end_user: r for r in gw.records()}
    a, b = records["whole"], records["streamed"]
    assert (a.stream, b.stream) == (False, True)
    assert a.usage_source == b.usage_source == usage_source
    assert (a.input_tokens, a.output_tokens) == (b.input_tokens, b.output_tokens)
    expected_tokens = {"reported": (4, 5), "counted": (4, 6), "estimated": (4, 6)}[usage_source]
    assert (a.input_tokens, a.output_tokens) == expected_tokens
    assert a.cost_nanos == b.cost_nanos
    assert a.cost_nanos == a.input_tokens * INPUT_NANOS + a.output_tokens * OUTPUT_NANOS
    if usage_source == "reported":
        served = upstream.requests()[0].usage
        assert served is not None
        assert a.cost_nanos == _price_of(served)


async def test_a_stream_the_client_asked_usage_for_is_charged_the_usage_it_was_shown(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = _priced(gateway_factory, upstream)
    client = gw.async_client()
    _, usage = await stream_text_and_usage(client, "gpt-test", "one two three")
    await client.close()
    [record] = gw.records()
    assert record.cost_nanos == usage.prompt_tokens * INPUT_NANOS + usage.completion_tokens * OUTPUT_NANOS


def test_a_hard_budget_refuses_with_insufficient_quota_and_is_never_exceeded(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = _priced(gateway_factory, upstream, access=AccessSettings(enabled=True, refresh_interval=60))
    admin = gw.admin()
    key_id, secret = admin.new_key("metered", team_id=admin.team("t"))
    limit_nanos = 300_000
    budget = admin.post(
        "/budgets", {"scope": "key", "scope_id": key_id, "period": "day", "limit_usd": "0.0003", "hard": True}
    )
    assert budget["limit_nanos"] == limit_nanos
    client = gw.client(secret)
    served, refusal = 0, None
    for _ in range(30):
        try:
            client.chat.completions.create(model="gpt-test", messages=MESSAGES, max_tokens=10)
        except openai.RateLimitError as exc:
            refusal = exc
            break
        served += 1
    assert refusal is not None
    error = refusal
    assert error.code == "budget_exceeded"
    assert error.type == "insufficient_quota"
    assert "Budget exceeded" in error.message
    # The reservation (every byte of the body as an input token, plus 10 output tokens)
    # is what ran out, well before the spend itself reached the limit.
    assert 1 <= served < 30
    assert len(upstream.requests()) == served
    records = gw.records()
    spent = sum(r.cost_nanos or 0 for r in records)
    assert spent == served * (4 * INPUT_NANOS + 5 * OUTPUT_NANOS)
    assert spent <= limit_nanos
    [refusal] = [r for r in records if r.status == 429]
    assert refusal.error_type == "insufficient_quota"
    status = settled_status(admin, budget["id"])
    assert status["spent_nanos"] == spent
    assert status["reserved_nanos"] == 0


def test_a_budget_smaller_than_one_call_refuses_it_before_upstream(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = _priced(gateway_factory, upstream)
    # A budget on the model (route) needs no key: it applies to every caller.
    gw.admin().post(
        "/budgets", {"scope": "model", "scope_id": "gpt-test", "period": "total", "limit_usd": "0.00001"}
    )
    with pytest.raises(openai.RateLimitError) as refused:
        gw.client().chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert refused.value.code == "budget_exceeded"
    assert upstream.requests() == []


def test_usage_report_shows_the_spend_by_key_and_model(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = _priced(gateway_factory, upstream, access=AccessSettings(enabled=True, refresh_interval=60))
    admin = gw.admin()
    team_id = admin.team("t")
    key_a, secret_a = admin.new_key("a", team_id=team_id)
    key_b, secret_b = admin.new_key("b", team_id=team_id)
    for _ in range(2):
        gw.client(secret_a).chat.completions.create(model="gpt-test", messages=MESSAGES)
    gw.client(secret_b).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}]
    )
    gw.flush_log()
    report = admin.get("/usage?by=key,model")
    rows = {row["key"]: row for row in report["data"]}
    one_call = 4 * INPUT_NANOS + 5 * OUTPUT_NANOS
    assert rows[key_a]["requests"] == 2
    assert rows[key_a]["cost_nanos"] == 2 * one_call
    assert rows[key_a]["model"] == "gpt-test"
    assert (rows[key_a]["input_tokens"], rows[key_a]["output_tokens"]) == (8, 10)
    assert rows[key_b]["cost_nanos"] == 1 * INPUT_NANOS + 2 * OUTPUT_NANOS
    lines = admin.call("GET", "/usage?by=team&format=csv", expect=200).text.splitlines()
    header, [row] = lines[0].split(","), [line.split(",") for line in lines[1:]]
    by_column = dict(zip(header, row, strict=True))
    assert by_column["team"] == team_id
    assert by_column["requests"] == "3"
    assert by_column["cost_nanos"] == str(2 * one_call + 1 * INPUT_NANOS + 2 * OUTPUT_NANOS)


async def test_a_stream_the_client_abandons_is_charged_for_what_was_generated(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = _priced(gateway_factory, upstream)
    budget = await asyncio.to_thread(
        gw.admin().post,
        "/budgets",
        {"scope": "model", "scope_id": "gpt-test", "period": "total", "limit_usd": "10"},
    )
    upstream.set_default(Fault(chunk_delay=0.1, reply=" ".join(["word"] * 40)))
    client = gw.async_client()
    stream = await client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    seen = 0
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            seen += 1
            if seen == 3:
                break
    await stream.close()
    await client.close()
    await upstream.wait_for_async(lambda: upstream.requests()[0].cancelled, timeout=5)
    [record] = await asyncio.to_thread(gw.records)
    assert record.status == 499
    # What was relayed is counted (no usage came): some of the 40 words, not all, not none.
    assert record.usage_source == "estimated"
    assert record.output_tokens is not None
    assert 0 < record.output_tokens < 40
    assert record.cost_nanos == record.input_tokens * INPUT_NANOS + record.output_tokens * OUTPUT_NANOS
    # The reservation was settled at that cost.
    status = await asyncio.to_thread(settled_status, gw.admin(), budget["id"])
    assert (status["spent_nanos"], status["reserved_nanos"]) == (record.cost_nanos, 0)


def test_a_retried_call_is_charged_once_for_the_answer(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = _priced(gateway_factory, upstream)
    upstream.script(Fault(status=500), Fault(status=503))
    gw.client().chat.completions.create(model="gpt-test", messages=MESSAGES)
    [record] = gw.records()
    assert record.attempts == 3
    assert record.cost_nanos == 4 * INPUT_NANOS + 5 * OUTPUT_NANOS


def test_an_end_user_budget_refuses_that_user_only(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = _priced(gateway_factory, upstream)
    gw.admin().post(
        "/budgets", {"scope": "end_user", "scope_id": "heavy", "period": "month", "limit_usd": "0.00001"}
    )
    client = gw.client()
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES, user="heavy")
    assert "end user 'heavy'" in refused.value.message
    client.chat.completions.create(model="gpt-test", messages=MESSAGES, user="light")
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert len(upstream.requests()) == 2
