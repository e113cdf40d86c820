"""``PromptClient`` against a real Keel server: fetch, cache, stale-while-revalidate, and
serving the cached or fallback version while Keel is down."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

import keel
from keel.client import FALLBACK_VERSION, Fallback, PromptClient, PromptUnavailable
from keel.core import AuthenticationError, InvalidRequest, NotFound
from keel.prompts import PromptRegistry, PromptVersion
from keel.store import create_store_engine
from tests.client.conftest import KeelServer
from tests.prompts.helpers import make_version

T = TypeVar("T")

CHAT = [
    {"role": "system", "content": "You support {{ product }} ({{ tone }})."},
    {"role": "placeholder", "content": "{{ history }}"},
    {"role": "user", "content": "{{ question }}"},
]
VARIABLES = {"product": "string", "question": "string", "tone": {"type": "string", "default": "v1"}}


def publish(registry: PromptRegistry, name: str = "support", tone: str = "v1") -> PromptVersion:
    """A new version of ``name`` (the prompt created if need be) labelled production."""
    variables = {**VARIABLES, "tone": {"type": "string", "default": tone}}
    try:
        version = registry.add_version(name, template=CHAT, variables=variables, actor="test")
    except NotFound:
        version = registry.create(
            name, type="chat", template=CHAT, variables=variables, model_config={"model": "m"}, actor="test"
        )
    registry.set_label(name, "production", version.version, actor="test", admin=True)
    return version


def tone(version: PromptVersion) -> str:
    """Which version rendered: the ``tone`` default differs per version."""
    messages = version.render({"product": "Keel", "question": "q"}).chat_messages()
    return str(messages[0]["content"]).removeprefix("You support Keel (").removesuffix(").")


def eventually(check: Callable[[], T], want: T, deadline: float = 5.0) -> T:
    end = time.monotonic() + deadline
    while True:
        got = check()
        if got == want or time.monotonic() > end:
            return got
        time.sleep(0.02)


@pytest.fixture
def member_key(keel_server: KeelServer) -> str:
    return keel_server.new_key("member")


@pytest.fixture
def client(keel_server: KeelServer, member_key: str) -> Iterator[PromptClient]:
    with PromptClient(keel_server.url, member_key, ttl=60, timeout=2) as client:
        yield client


def test_fetches_renders_and_caches(keel_server: KeelServer, client: PromptClient, member_key: str) -> None:
    registry = keel_server.registry
    v1 = publish(registry)
    got = client.get("support")
    assert (got.prompt_name, got.version, got.prompt_type, tone(got)) == ("support", 1, "chat", "v1")
    assert got.model_config == {"model": "m"} and got.created_at == v1.created_at
    rendered = got.render({"product": "Keel", "question": "Why?"})
    history = [{"role": "user", "content": "earlier"}]
    assert rendered.chat_messages(history) == [
        {"role": "system", "content": "You support Keel (v1)."},
        *history,
        {"role": "user", "content": "Why?"},
    ]
    publish(registry, tone="v2")
    assert tone(client.get("support")) == "v1"  # fresh for ttl: not asked again
    assert tone(client.get("support", version=2)) == "v2"
    assert tone(client.get("support#1")) == "v1"
    assert tone(client.get("support@latest")) == "v2"
    # The same client through the OpenAI SDK's base URL, and from the top-level package.
    assert keel.PromptClient is PromptClient
    with keel.PromptClient(f"{keel_server.url}/v1/", member_key) as other:
        assert tone(other.get("support", label="production")) == "v2"


def test_serves_stale_while_revalidating(keel_server: KeelServer, member_key: str) -> None:
    registry = keel_server.registry
    publish(registry)
    with PromptClient(keel_server.url, member_key, ttl=0.3) as client:
        assert tone(client.get("support")) == "v1"
        publish(registry, tone="v2")
        time.sleep(0.35)
        # Stale: the cached version comes back at once, the refresh runs behind it.
        started = time.perf_counter()
        assert tone(client.get("support")) == "v1"
        assert time.perf_counter() - started < 0.05
        assert eventually(lambda: tone(client.get("support")), "v2") == "v2"


def test_keeps_serving_cached_and_fallback_versions_while_keel_is_down(
    keel_server: KeelServer, member_key: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = keel_server.registry
    publish(registry)
    pulled = tmp_path / "faq.yaml"
    pulled.write_text("template: 'FAQ about {{ topic }}'\nvariables: {topic: string}\n")
    greeting_fallback = {"template": "Hello {{ who }}!", "variables": {"who": {"default": "you"}}}
    fallbacks: dict[str, Fallback] = {"faq": pulled, "greeting": greeting_fallback}
    client = PromptClient(keel_server.url, member_key, ttl=0.1, retry_interval=0.1, fallbacks=fallbacks)
    assert tone(client.get("support")) == "v1"
    assert tone(client.get("support", version=1)) == "v1"

    keel_server.stop()
    time.sleep(0.15)  # every cached entry is stale now
    caplog.set_level(logging.WARNING, logger="keel.client")
    end = time.monotonic() + 1.0
    while time.monotonic() < end:  # many calls, many failed background refreshes
        assert tone(client.get("support")) == "v1"
        time.sleep(0.01)
    assert "refreshing prompt 'support@production' failed" in caplog.text
    assert tone(client.get("support#1")) == "v1"
    greeting = client.get("greeting")
    assert (greeting.version, greeting.author) == (FALLBACK_VERSION, "fallback")
    assert greeting.render().text == "Hello you!"
    assert client.get("faq@staging").render({"topic": "keys"}).text == "FAQ about keys"
    with pytest.raises(PromptUnavailable) as raised:
        client.get("other")
    message = raised.value.message
    assert message.startswith(
        "Prompt 'other@production' is unavailable: Keel is unreachable at http://127.0.0"
    )
    assert "no fallback" in message and raised.value.status == 503

    # Keel comes back with a new production version: the client picks it up; the
    # fallback gives way to the registry's version once Keel has one.
    engine = create_store_engine(keel_server.database_url)
    publish(PromptRegistry(engine), tone="v2")
    publish(PromptRegistry(engine), name="greeting", tone="g1")
    engine.dispose()
    keel_server.start()
    assert eventually(lambda: tone(client.get("support")), "v2") == "v2"
    assert eventually(lambda: client.get("greeting").version, 1) == 1
    client.close()


def test_a_keel_that_never_answers_costs_one_timeout(member_key: str) -> None:
    # A listening socket nobody accepts from: connections hang until the client's timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        fallback = {"template": "Fallback {{ x }}", "variables": {"x": "string"}}
        pinned = make_version("Pinned", name="r", version=7)
        fallbacks: dict[str, Fallback] = {"p": fallback, "r#7": pinned}
        with PromptClient(url, member_key, timeout=0.3, fallbacks=fallbacks) as client:
            started = time.perf_counter()
            assert client.get("p").render({"x": "1"}).text == "Fallback 1"
            assert 0.25 < time.perf_counter() - started < 2
            started = time.perf_counter()
            for _ in range(20):
                assert client.get("p").version == FALLBACK_VERSION
            assert time.perf_counter() - started < 0.05  # held: no second wait on Keel
            with pytest.raises(PromptUnavailable, match="timed out"):
                client.get("q")
            assert client.get("r", version=7) is pinned
            with pytest.raises(PromptUnavailable):  # that fallback is for version 7 only
                client.get("r")


def test_errors_from_keel(keel_server: KeelServer, client: PromptClient) -> None:
    publish(keel_server.registry)
    with pytest.raises(NotFound, match="Unknown prompt 'nope'"):
        client.get("nope")
    with pytest.raises(NotFound, match="has no label 'canary'"):
        client.get("support", label="canary")
    with pytest.raises(NotFound, match="has no version 9"):
        client.get("support", version=9)
    with pytest.raises(AuthenticationError):
        PromptClient(keel_server.url, "sk-keel-wrong").get("support")
    # An application's service key may fetch prompts (read-only), not manage them.
    service = PromptClient(keel_server.url, keel_server.new_key("service"))
    assert service.get("support").version >= 1
    # With a fallback, even a refusal does not break the app.
    fallback = {"template": "Fallback"}
    refused = PromptClient(keel_server.url, "sk-keel-wrong", fallbacks={"support": fallback})
    assert refused.get("support").render().text == "Fallback"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PromptClient("keel:8000", "k"), "must be an http(s) URL"),
        (lambda: PromptClient("http://keel", ""), "'api_key' is required"),
        (lambda: PromptClient("http://keel", "k", ttl=-1), "'ttl'"),
        (lambda: PromptClient("http://keel", "k", fallbacks={"a b": {}}), "Invalid prompt reference"),
        (
            lambda: PromptClient("http://keel", "k", fallbacks={"p": {"template": "{{ x }}"}}),
            "The fallback for 'p' is invalid: Template of prompt 'p' uses undeclared variable 'x'",
        ),
        (
            lambda: PromptClient("http://keel", "k", fallbacks={"p": {"name": "q", "template": "x"}}),
            "The fallback for 'p' defines prompt 'q'",
        ),
        (
            lambda: PromptClient("http://keel", "k", fallbacks={"p": make_version("x", name="q")}),
            "The fallback for 'p' is a version of prompt 'q'",
        ),
        (lambda: PromptClient("http://keel", "k").get("p", label="a", version=1), "not both"),
        (lambda: PromptClient("http://keel", "k").get("p@a", label="b"), "names its label"),
        (lambda: PromptClient("http://keel", "k").get("p", version=0), "number from 1"),
        (lambda: PromptClient("http://keel", "k").get("p", label="a b"), "Invalid prompt reference"),
    ],
)
def test_bad_arguments_are_clear_errors(make: Callable[[], object], message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        make()
    assert message in raised.value.message
