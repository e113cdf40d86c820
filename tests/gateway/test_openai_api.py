"""The data plane with the official openai SDK as the client, a real port, a real store."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from tests.fakes import FakeDeployment, Fault
from tests.gateway.conftest import GatewayFactory
from tests.streams import stream_text_and_usage


def test_chat_sync_is_answered_and_recorded(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory({"gpt-test": [upstream]})
    reply = gw.client().chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hello there"}]
    )
    assert reply.choices[0].message.content == "echo: hello there"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 2
    sent = upstream.last_request
    assert sent.json["model"] == "fake-chat"  # the deployment's model id upstream
    assert sent.api_key == "sk-upstream"  # the provider's key, not the client's
    [record] = gw.records()
    assert record.requested_model == "gpt-test"
    assert record.route == "gpt-test"
    assert record.deployment == upstream.name
    assert record.status == 200
    assert record.attempts == 1
    assert record.stream is False
    assert (record.input_tokens, record.output_tokens, record.usage_source) == (2, 3, "reported")
    assert record.latency_ms is not None
    assert record.latency_ms > 0
    assert record.request_body is not None
    assert "hello there" in record.request_body
    assert record.response_body is not None
    assert "echo: hello there" in record.response_body


async def test_chat_async_stream_relays_chunks_and_usage(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory({"gpt-test": [upstream]})
    client = gw.async_client()
    text, usage = await stream_text_and_usage(client, "gpt-test", "one two three")
    await client.close()
    assert text == "echo: one two three"
    assert usage is not None
    assert usage.completion_tokens == 4
    [record] = gw.records()
    assert record.stream is True
    assert record.status == 200
    assert record.ttft_ms is not None
    assert record.ttft_ms <= record.latency_ms
    assert (record.output_tokens, record.usage_source) == (4, "reported")
    assert record.response_body is not None
    assert "echo: one two three" in record.response_body
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{gw.url}/metrics")).text
    assert 'gen_ai_server_time_to_first_token_seconds_count{gen_ai_request_model="gpt-test"} 1.0' in metrics


def test_stream_asks_upstream_for_usage_but_hides_it_from_clients_that_did_not(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory({"gpt-test": [upstream]})
    chunks = list(
        gw.client().chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert upstream.last_request.json["stream_options"] == {"include_usage": True}
    assert all(chunk.choices for chunk in chunks), "the usage-only chunk leaked to the client"
    [record] = gw.records()
    assert record.usage_source == "reported"
    assert record.output_tokens == 2


def test_stream_without_usage_is_counted_and_says_so(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    upstream.set_default(Fault(no_usage=True))
    gw = gateway_factory({"gpt-test": [upstream]})
    list(
        gw.client().chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "count these words"}], stream=True
        )
    )
    [record] = gw.records()
    assert record.usage_source in ("counted", "estimated")
    assert record.output_tokens is not None
    assert record.output_tokens > 0
    assert record.input_tokens is not None
    assert record.input_tokens > 0


def test_unknown_fields_tools_response_format_and_n_pass_through(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory({"gpt-test": [upstream]})
    tool = {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
    }
    upstream.script(Fault(tool_call={"name": "get_weather", "arguments": '{"city": "Oslo"}'}))
    reply = gw.client().chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[tool],  # type: ignore[list-item]
        n=2,
        extra_body={"vendor_knob": {"nested": [1, 2]}, "seed": 7},
    )
    sent = upstream.last_request.json
    assert sent["vendor_knob"] == {"nested": [1, 2]}
    assert sent["seed"] == 7
    assert sent["n"] == 2
    assert sent["tools"] == [tool]
    call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]

    reply = gw.client().chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "x"}], response_format={"type": "json_object"}
    )
    assert upstream.last_request.json["response_format"] == {"type": "json_object"}
    assert json.loads(reply.choices[0].message.content or "") == {"echo": "x"}


def test_completions_embeddings_and_models(gateway_factory: GatewayFactory, make_deployment: object) -> None:
    chat, embed = make_deployment(), make_deployment()  # type: ignore[operator]
    gw = gateway_factory({"gpt-test": [chat], "embed-test": [embed]}, mode={"embed-test": "embedding"})
    client = gw.client()
    completion = client.completions.create(model="gpt-test", prompt="say this")
    assert "say this" in completion.choices[0].text
    vectors = client.embeddings.create(model="embed-test", input=["a", "b"])
    assert len(vectors.data) == 2
    assert len(vectors.data[0].embedding) == 8
    models = sorted(m.id for m in client.models.list())
    assert models == ["embed-test", "gpt-test"]
    assert client.models.retrieve("gpt-test").id == "gpt-test"
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="gpt-test", input="a chat model cannot embed")
    records = {r.endpoint: r for r in gw.records()}
    assert records["embeddings"].status == 200
    assert records["embeddings"].input_tokens == 2
    assert records["completions"].status == 200


def test_health_and_metrics(gateway_factory: GatewayFactory, upstream: FakeDeployment) -> None:
    gw = gateway_factory({"gpt-test": [upstream]})
    gw.client().chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert httpx.get(f"{gw.url}/health/live").json() == {"status": "ok"}
    ready = httpx.get(f"{gw.url}/health/ready")
    assert ready.status_code == 200
    assert ready.json()["store"] == "ok"
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert 'keel_requests_total{endpoint="chat.completions",model="gpt-test",status="200"} 1.0' in metrics
    assert "gen_ai_client_operation_duration_seconds_bucket" in metrics
    assert (
        'gen_ai_client_token_usage_count{gen_ai_request_model="gpt-test",gen_ai_token_type="output"}'
        in metrics
    )
    assert f'keel_upstream_attempts_total{{deployment="{upstream.name}",outcome="ok"}} 1.0' in metrics
    assert "keel_request_log_queue_depth" in metrics


async def test_anthropic_upstream_behind_the_openai_api(
    gateway_factory: GatewayFactory, upstream: FakeDeployment
) -> None:
    gw = gateway_factory({"claude": [upstream]}, anthropic=("claude",))
    client = gw.async_client()
    reply = await client.chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello claude"}],
        max_tokens=50,
    )
    assert reply.choices[0].message.content == "echo: hello claude"
    assert reply.choices[0].finish_reason == "stop"
    sent = upstream.last_request
    assert sent.path == "/v1/messages"
    assert sent.json["system"] in ("be brief", [{"type": "text", "text": "be brief"}])
    text, usage = await stream_text_and_usage(client, "claude", "stream it")
    await client.close()
    assert text == "echo: stream it"
    assert usage is not None
    assert usage.completion_tokens == 3
    records = sorted(gw.records(), key=lambda r: r.stream)
    assert [(r.provider, r.stream, r.usage_source) for r in records] == [
        (upstream.name, False, "reported"),
        (upstream.name, True, "reported"),
    ]
