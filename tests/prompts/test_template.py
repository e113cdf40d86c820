from __future__ import annotations

import time

import pytest

from keel.core import InvalidRequest
from keel.prompts import Variable

from .helpers import make_version


def test_text_template_renders_variables_loops_and_conditionals() -> None:
    version = make_version(
        "Hi {{ name }}.{% if vip %} Welcome back!{% endif %}"
        "{% for item in items %} [{{ loop.index }}:{{ item }}]{% endfor %}",
        variables={"name": "string", "vip": {"type": "boolean", "default": False}, "items": "list"},
    )
    assert version.render({"name": "Ada", "vip": True, "items": ["a", "b"]}).text == (
        "Hi Ada. Welcome back! [1:a] [2:b]"
    )
    assert version.render({"name": "Bo", "items": []}).text == "Hi Bo."


def test_defaults_fill_missing_optional_variables() -> None:
    version = make_version(
        "{{ tone }} {{ n }}",
        variables={"tone": {"type": "string", "default": "friendly"}, "n": {"type": "integer", "default": 3}},
    )
    assert version.render().text == "friendly 3"
    assert version.render({"tone": "terse"}).text == "terse 3"


def test_a_missing_required_variable_is_named() -> None:
    version = make_version("{{ question }}", variables={"question": "string"})
    with pytest.raises(InvalidRequest, match="Missing variable 'question'") as caught:
        version.render({})
    assert caught.value.param == "prompt.variables.question"


@pytest.mark.parametrize(
    ("kind", "good", "bad", "bad_name"),
    [
        ("string", "x", 1, "integer"),
        ("number", 1.5, "1.5", "string"),
        ("number", 2, True, "boolean"),
        ("integer", 2, 2.5, "number"),
        ("integer", 3, False, "boolean"),
        ("boolean", True, 1, "integer"),
        ("list", [1], {"a": 1}, "object"),
        ("object", {"a": 1}, [1], "list"),
    ],
)
def test_variable_types_are_checked_and_named(kind: str, good: object, bad: object, bad_name: str) -> None:
    version = make_version("{{ v }}", variables=[{"name": "v", "type": kind}])
    version.render({"v": good})
    with pytest.raises(InvalidRequest, match=f"Variable 'v' of prompt 'p#1' must be {kind}, not {bad_name}"):
        version.render({"v": bad})


def test_undeclared_variables_in_a_template_are_refused_by_name() -> None:
    with pytest.raises(InvalidRequest, match=r"undeclared variable 'tone'.*messages\[1\]\.content"):
        make_version(
            [{"role": "system", "content": "{{ persona }}"}, {"role": "user", "content": "{{ tone }}"}],
            variables={"persona": "string"},
        )


def test_loop_and_set_names_are_not_variables() -> None:
    version = make_version(
        "{% set sep = ', ' %}{% for x in xs %}{{ x }}{{ sep if not loop.last }}{% endfor %}"
        "{{ range(2) | list }}",
        variables={"xs": "list"},
    )
    assert version.render({"xs": [1, 2]}).text == "1, 2[0, 1]"


def test_invalid_template_syntax_is_a_clear_error() -> None:
    with pytest.raises(InvalidRequest, match="does not compile \\(template, line 1\\)"):
        make_version("{{ name ", variables={"name": "string"})


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"x": "float"}, "unknown type 'float'"),
        ([{"name": "x"}, {"name": "x"}], "declared twice"),
        ([{"name": "1x"}], "must be an identifier"),
        ({"x": {"type": "integer", "default": "3"}}, "its default is string"),
        ({"x": {"type": "string", "default": "a", "required": True}}, "required and has a default"),
        ({"x": {"type": "string", "colour": "red"}}, "unknown field 'colour'"),
        ("x", "must be a list"),
    ],
)
def test_bad_variable_declarations(variables: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        make_version("{{ x }}", variables=variables)


def test_the_sandbox_refuses_python_internals_and_mutation() -> None:
    version = make_version("{{ s.__class__.__mro__ }}", variables={"s": "string"})
    with pytest.raises(InvalidRequest, match="refused by the template sandbox"):
        version.render({"s": "x"})
    mutate = make_version("{{ xs.append(1) }}", variables={"xs": "list"})
    with pytest.raises(InvalidRequest, match="refused by the template sandbox"):
        mutate.render({"xs": []})
    bomb = make_version("{{ 'a' * 100000000 }}")
    with pytest.raises(InvalidRequest, match="refused by the template sandbox"):
        bomb.render()


def test_undefined_attribute_on_a_value_is_a_render_error() -> None:
    version = make_version("{{ user.name }}", variables={"user": "object"})
    assert version.render({"user": {"name": "Ada"}}).text == "Ada"
    with pytest.raises(InvalidRequest, match="failed to render: 'dict object' has no attribute 'name'"):
        version.render({"user": {}})


def test_chat_template_with_placeholder_splices_history() -> None:
    version = make_version(
        [
            {"role": "system", "content": "You help with {{ product }}."},
            {"role": "placeholder", "content": "{{ history }}"},
            {"role": "user", "content": "{{ question }}", "name": "asker"},
        ],
        variables={"product": "string", "question": "string"},
    )
    rendered = version.render({"product": "Keel", "question": "Why?"})
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert rendered.chat_messages(history) == [
        {"role": "system", "content": "You help with Keel."},
        *history,
        {"role": "user", "content": "Why?", "name": "asker"},
    ]
    assert rendered.chat_messages() == [
        {"role": "system", "content": "You help with Keel."},
        {"role": "user", "content": "Why?", "name": "asker"},
    ]


def test_chat_template_shape_errors() -> None:
    with pytest.raises(InvalidRequest, match="more than one history placeholder"):
        make_version([{"role": "placeholder"}, {"role": "placeholder"}, {"role": "user", "content": "x"}])
    with pytest.raises(InvalidRequest, match="needs a 'role'"):
        make_version([{"content": "x"}])
    with pytest.raises(InvalidRequest, match="must be a string template"):
        make_version([{"role": "user", "content": 3}])
    with pytest.raises(InvalidRequest, match="non-empty list"):
        make_version([], type="chat")
    with pytest.raises(InvalidRequest, match="text prompt's template is a string"):
        make_version([{"role": "user", "content": "x"}], type="text")
    with pytest.raises(InvalidRequest, match="no message besides the placeholder"):
        make_version([{"role": "placeholder"}])


def test_model_config_is_checked() -> None:
    with pytest.raises(InvalidRequest, match=r"model_config\.temperature"):
        make_version("x", model_config={"temperature": 3})
    with pytest.raises(InvalidRequest, match="cannot set 'messages'"):
        make_version("x", model_config={"messages": []})
    with pytest.raises(InvalidRequest, match="max_tokens' must be a positive integer"):
        make_version("x", model_config={"max_tokens": 0})
    assert make_version("x", model_config={"model": "m", "seed": 1}).model_config == {"model": "m", "seed": 1}


def test_declarations_round_trip_to_json() -> None:
    version = make_version(
        "{{ a }}{{ b }}", variables={"a": "integer", "b": {"type": "list", "default": [1]}}
    )
    assert [v.to_json() for v in version.variables] == [
        {"name": "a", "type": "integer", "required": True},
        {"name": "b", "type": "list", "required": False, "default": [1]},
    ]
    assert version.variables[0] == Variable("a", "integer")


def test_rendering_a_compiled_version_is_cheap() -> None:
    version = make_version(
        [
            {"role": "system", "content": "You help with {{ product }}."},
            {"role": "user", "content": "{{ q }}"},
        ],
        variables={"product": "string", "q": "string"},
    )
    version.render({"product": "x", "q": "y"})  # compiles once
    started = time.perf_counter()
    for _ in range(1000):
        version.render({"product": "x", "q": "y"})
    per_render = (time.perf_counter() - started) / 1000
    assert per_render < 0.0005  # well under a millisecond (typically ~10 µs)
