"""``expand_prompt_request`` on plain dicts, as the gateway calls it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from keel.core import InvalidRequest, NotFound
from keel.prompts import expand_prompt_request, names_prompt

from .helpers import FakeCatalog, make_version

SUPPORT_V1 = make_version(
    [
        {"role": "system", "content": "You support {{ product }} users."},
        {"role": "placeholder", "content": "{{ history }}"},
        {"role": "user", "content": "{{ question }}"},
    ],
    variables={"product": {"type": "string", "default": "Keel"}, "question": "string"},
    model_config={
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "max_tokens": 100,
        "tools": [{"type": "function"}],
    },
    name="support",
    version=1,
)
SUPPORT_V2 = make_version(
    [{"role": "system", "content": "v2 for {{ product }}"}],
    variables={"product": "string"},
    model_config={"model": "gpt-4o"},
    name="support",
    version=2,
)
NO_MODEL = make_version("Summarise: {{ text }}", variables={"text": "string"}, name="summary", version=1)
CATALOG = FakeCatalog(
    SUPPORT_V1,
    SUPPORT_V2,
    NO_MODEL,
    labels={"support": {"production": 1, "staging": 2}, "summary": {"production": 1}},
)


def expand(body: dict[str, Any], **kwargs: Any) -> Any:
    original = copy.deepcopy(body)
    result = expand_prompt_request(CATALOG, body, **kwargs)
    assert body == original  # the caller's body is never changed
    return result


def test_a_plain_request_is_not_expanded() -> None:
    assert expand({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}) is None
    assert expand({"model": "gpt-4o", "prompt": "Once upon a time"}, mode="completion") is None
    assert not names_prompt({"model": "gpt-4o", "prompt": ["a", "b"]})
    assert names_prompt({"model": "prompt:x"}) and names_prompt({"model": "m", "prompt": {"name": "x"}})


def test_prompt_field_renders_messages_and_applies_config() -> None:
    history = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "reply"}]
    result = expand(
        {
            "model": "my-route",
            "messages": history,
            "prompt": {"name": "support", "label": "production", "variables": {"question": "How?"}},
            "temperature": 0.9,
            "user": "u1",
        }
    )
    assert result.prompt_name == "support" and result.prompt_version == 1 and result.label == "production"
    assert result.body == {
        "model": "my-route",  # the request's own model wins with the prompt field
        "messages": [
            {"role": "system", "content": "You support Keel users."},
            *history,
            {"role": "user", "content": "How?"},
        ],
        "temperature": 0.9,  # the request's own value wins
        "max_tokens": 100,
        "tools": [{"type": "function"}],
        "user": "u1",
    }


def test_model_alias_routes_to_the_configured_model() -> None:
    result = expand(
        {
            "model": "prompt:support@staging",
            "prompt": {"variables": {"product": "Ada"}},
            "messages": [{"role": "user", "content": "q"}],
        }
    )
    assert result.prompt_version == 2 and result.label == "staging"
    # No placeholder: the caller's messages follow the template's.
    assert result.body == {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "v2 for Ada"}, {"role": "user", "content": "q"}],
    }


def test_alias_without_label_resolves_production_and_hash_names_a_version() -> None:
    body = {"model": "prompt:support", "prompt": {"variables": {"question": "q", "product": "P"}}}
    assert expand(body).prompt_version == 1
    assert expand({**body, "model": "prompt:support#2"}).prompt_version == 2
    assert (
        expand(
            {"model": "m", "prompt": {"name": "support", "version": 2, "variables": {"product": "P"}}}
        ).prompt_version
        == 2
    )


def test_max_completion_tokens_in_the_request_overrides_max_tokens_in_the_config() -> None:
    result = expand(
        {"model": "prompt:support", "prompt": {"variables": {"question": "q"}}, "max_completion_tokens": 5}
    )
    assert "max_tokens" not in result.body and result.body["max_completion_tokens"] == 5


def test_a_null_field_in_the_request_counts_as_unset() -> None:
    result = expand(
        {"model": "prompt:support", "prompt": {"variables": {"question": "q"}}, "temperature": None}
    )
    assert result.body["temperature"] == 0.2


def test_prompt_field_without_model_uses_the_configured_model() -> None:
    result = expand({"prompt": {"name": "support", "variables": {"question": "q"}}})
    assert result.body["model"] == "gpt-4o-mini"


def test_no_model_anywhere_is_an_error() -> None:
    with pytest.raises(InvalidRequest, match="'summary#1' has no model in its model config") as caught:
        expand({"model": "prompt:summary", "prompt": {"variables": {"text": "x"}}})
    assert caught.value.param == "model"
    with pytest.raises(InvalidRequest, match="no model"):
        expand({"prompt": {"name": "summary", "variables": {"text": "x"}}})


def test_text_prompt_for_chat_is_one_user_message_and_for_completions_the_prompt() -> None:
    chat = expand({"model": "m", "prompt": {"name": "summary", "variables": {"text": "abc"}}})
    assert chat.body == {"model": "m", "messages": [{"role": "user", "content": "Summarise: abc"}]}
    completion = expand(
        {"model": "m", "prompt": {"name": "summary", "variables": {"text": "abc"}}}, mode="completion"
    )
    assert completion.body == {"model": "m", "prompt": "Summarise: abc"}


def test_chat_only_config_is_not_applied_to_completions_and_chat_prompts_refuse_them() -> None:
    with pytest.raises(InvalidRequest, match="is a chat prompt: call it through /v1/chat/completions"):
        expand({"model": "prompt:support", "prompt": {"variables": {"question": "q"}}}, mode="completion")
    text_with_tools = make_version("x", model_config={"model": "m", "tools": [], "temperature": 1}, name="t")
    result = expand_prompt_request(
        FakeCatalog(text_with_tools, labels={"t": {"production": 1}}),
        {"model": "prompt:t"},
        mode="completion",
    )
    assert result is not None and result.body == {"model": "m", "prompt": "x", "temperature": 1}


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (
            {"model": "prompt:support", "prompt": {"variables": {}}},
            InvalidRequest,
            "Missing variable 'question'",
        ),
        (
            {"model": "prompt:support", "prompt": {"variables": {"question": 3}}},
            InvalidRequest,
            "Variable 'question' of prompt 'support#1' must be string, not integer",
        ),
        ({"model": "prompt:nope"}, NotFound, "Unknown prompt 'nope'"),
        ({"model": "prompt:support@canary"}, NotFound, "has no label 'canary'"),
        ({"model": "prompt:support#9"}, NotFound, "has no version 9"),
        ({"model": "prompt:support#x"}, InvalidRequest, "'#' takes a version number"),
        ({"model": "prompt:"}, InvalidRequest, "Invalid prompt reference"),
        (
            {"model": "prompt:support", "prompt": {"name": "support"}},
            InvalidRequest,
            "already names the prompt",
        ),
        ({"model": "prompt:support", "prompt": "text"}, InvalidRequest, "'prompt' must be an object"),
        ({"model": "m", "prompt": {"label": "production"}}, InvalidRequest, "'prompt.name' is required"),
        (
            {"model": "m", "prompt": {"name": "support", "vars": {}}},
            InvalidRequest,
            "Unknown field 'prompt.vars'",
        ),
        ({"model": "m", "prompt": {"name": "support", "version": "2"}}, InvalidRequest, "positive integer"),
        ({"model": "m", "prompt": {"name": "support", "version": True}}, InvalidRequest, "positive integer"),
        (
            {"model": "m", "prompt": {"name": "support", "version": 1, "label": "production"}},
            InvalidRequest,
            "not both",
        ),
        ({"model": "m", "prompt": {"name": "support", "variables": []}}, InvalidRequest, "must be an object"),
        (
            {"model": "prompt:support", "prompt": {"variables": {"question": "q"}}, "messages": "hi"},
            InvalidRequest,
            "'messages' must be a list",
        ),
    ],
)
def test_errors_are_clear(body: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        expand(body)


def test_completions_alias_with_its_own_prompt_text_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="supplies the prompt text"):
        expand({"model": "prompt:summary", "prompt": "hello"}, mode="completion")


def test_undeclared_variables_from_the_caller_are_ignored() -> None:
    # A label move to a version that dropped a variable must not break its callers.
    result = expand({"model": "prompt:support", "prompt": {"variables": {"question": "q", "old": 1}}})
    assert result.body["messages"][-1] == {"role": "user", "content": "q"}
