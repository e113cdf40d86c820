"""Bad input gets a clear OpenAI-format error and leaves nothing half-done upstream."""

from __future__ import annotations

import httpx
import openai
import pytest
from tests.fakes import FakeDeployment
from tests.gateway.conftest import GatewayFactory


@pytest.fixture
def gw_url(gateway_factory: GatewayFactory, upstream: FakeDeployment) -> str:
    return gateway_factory({"m": [upstream]}, max_body_bytes=4096).url


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, object] = body["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    return error


@pytest.mark.parametrize(
    ("body", "status", "param", "fragment"),
    [
        (b"{not json", 400, None, "not valid JSON"),
        (b"[1, 2]", 400, None, "must be a JSON object"),
        (b"", 400, None, "empty"),
        (b'{"model": "m"}', 400, "messages", "Missing required parameter"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', 400, "model", "Missing"),
        (b'{"model": "m", "messages": "hello"}', 400, "messages", "Invalid value"),
        (b'{"model": "m", "messages": []}', 400, "messages", "Invalid value"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": "two"}', 400, "n", "Invalid"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 9}',
            400,
            "temperature",
            "Invalid",
        ),
        (
            b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "model",
            "does not exist",
        ),
    ],
)
def test_bad_chat_requests(
    gw_url: str, upstream: FakeDeployment, body: bytes, status: int, param: str | None, fragment: str
) -> None:
    response = httpx.post(
        f"{gw_url}/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    error = _error(response)
    assert error["param"] == param
    assert fragment in str(error["message"])
    assert upstream.requests() == [], "a refused request must not reach upstream"


def test_body_over_the_limit_is_413(gw_url: str, upstream: FakeDeployment) -> None:
    big = {"model": "m", "messages": [{"role": "user", "content": "x" * 10_000}]}
    response = httpx.post(f"{gw_url}/v1/chat/completions", json=big)
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"

    # Without Content-Length (chunked upload) the limit holds while reading.
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}]}'

    response = httpx.post(f"{gw_url}/v1/chat/completions", content=chunks())
    assert response.status_code == 413
    assert upstream.requests() == []


def test_unknown_model_with_the_sdk(gw_url: str) -> None:
    client = openai.OpenAI(base_url=f"{gw_url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "model_not_found"


def test_unknown_path_and_method_are_json_errors(gw_url: str) -> None:
    response = httpx.get(f"{gw_url}/v1/nothing-here")
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"
    response = httpx.get(f"{gw_url}/v1/chat/completions")
    assert response.status_code == 405
    _error(response)


def test_errors_are_recorded(gateway_factory: GatewayFactory, upstream: FakeDeployment) -> None:
    gw = gateway_factory({"m": [upstream]})
    httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user"}]})
    httpx.post(f"{gw.url}/v1/chat/completions", content=b"{bad")
    records = sorted(gw.records(), key=lambda r: r.status)
    assert [(r.status, r.error_type) for r in records] == [
        (400, "invalid_request_error"),
        (404, "invalid_request_error"),
    ]
    assert records[1].requested_model == "nope"
