from __future__ import annotations

import pytest

from keel.cache import cache_key, semantic_partition, semantic_text, wants_bypass

BODY = {
    "model": "gpt-x",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    "temperature": 0,
    "max_tokens": 20,
}


def test_field_order_and_delivery_fields_do_not_change_the_key() -> None:
    reordered = {"max_tokens": 20, "temperature": 0, "messages": BODY["messages"], "model": "gpt-x"}
    streamed = {
        **BODY,
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "u-1",
        "metadata": {"trace": "x"},
    }
    key = cache_key(BODY, "chat", "team:a")
    assert cache_key(reordered, "chat", "team:a") == key
    assert cache_key(streamed, "chat", "team:a") == key
    assert len(key) == 64 and int(key, 16) >= 0


def test_nested_key_order_does_not_matter() -> None:
    a = {**BODY, "response_format": {"type": "json_schema", "json_schema": {"name": "n", "strict": True}}}
    b = {**BODY, "response_format": {"json_schema": {"strict": True, "name": "n"}, "type": "json_schema"}}
    assert cache_key(a, "chat", "s") == cache_key(b, "chat", "s")


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.7},
        {"n": 2},
        {"seed": 1},
        {"max_tokens": 21},
        {"messages": [{"role": "user", "content": "Hi"}]},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
    ],
)
def test_fields_that_change_the_answer_change_the_key(change: dict[str, object]) -> None:
    assert cache_key({**BODY, **change}, "chat", "s") != cache_key(BODY, "chat", "s")


def test_model_is_the_route_and_scope_separates() -> None:
    # An alias and its target are one route: the client's model name does not matter.
    assert cache_key({**BODY, "model": "alias"}, "chat", "s") == cache_key(BODY, "chat", "s")
    assert cache_key(BODY, "chat", "s") != cache_key(BODY, "other-route", "s")
    assert cache_key(BODY, "chat", "team:a") != cache_key(BODY, "chat", "team:b")


def test_semantic_text_is_the_conversations_text() -> None:
    assert semantic_text(BODY) == "Be brief.\nHi"
    parts = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
        ]
    }
    assert semantic_text(parts) == "a\nb"
    image = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}
    assert semantic_text(image) is None
    assert semantic_text({"prompt": "Say hi"}) == "Say hi"
    assert semantic_text({"prompt": ["a", "b"]}) == "a\nb"
    assert semantic_text({"prompt": [1, 2, 3]}) is None
    assert semantic_text({"input": "embed me"}) is None
    assert semantic_text({"messages": [{"role": "user", "content": "  "}]}) is None


def test_semantic_partition_ignores_only_the_text() -> None:
    reworded = {
        **BODY,
        "messages": [{"role": "system", "content": "Short!"}, {"role": "user", "content": "Hello"}],
    }
    assert semantic_partition(reworded, "chat", "s") == semantic_partition(BODY, "chat", "s")
    assert semantic_partition({**reworded, "stream": True}, "chat", "s") == semantic_partition(
        BODY, "chat", "s"
    )
    assert semantic_partition({**BODY, "temperature": 1}, "chat", "s") != semantic_partition(
        BODY, "chat", "s"
    )
    one_turn = {**BODY, "messages": [{"role": "user", "content": "Hi"}]}
    assert semantic_partition(one_turn, "chat", "s") != semantic_partition(BODY, "chat", "s")
    assert semantic_partition(BODY, "chat", "team:a") != semantic_partition(BODY, "chat", "team:b")
    assert semantic_partition({"prompt": ["a", "b"]}, "c", "s") != semantic_partition(
        {"prompt": ["a"]}, "c", "s"
    )


@pytest.mark.parametrize(
    ("headers", "bypass"),
    [
        ({"x-keel-cache": "bypass"}, True),
        ({"X-Keel-Cache": "BYPASS"}, True),
        ({"Cache-Control": "no-cache"}, True),
        ({"cache-control": "max-age=0, no-store"}, True),
        ({"cache-control": "max-age=60"}, False),
        ({"x-keel-cache": "use"}, False),
        ({"authorization": "Bearer no-cache"}, False),
        ([(b"x-keel-cache", b"bypass")], True),
        ([(b"content-type", b"application/json")], False),
    ],
)
def test_wants_bypass(headers: object, bypass: bool) -> None:
    assert wants_bypass(headers) is bypass  # type: ignore[arg-type]
