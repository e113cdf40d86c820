"""The structured-output scorers: JSON validity, JSON Schema, one field, tool calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keel.core import ConfigError, InvalidRequest
from keel.evals._scorer import build_scorer
from keel.evals._scorers_json import json_equal, parse_path
from keel.evals._types import Case, Output, Score, ScoreContext, ToolCall


async def score(
    kind: str, text: str = "", expected: Any = None, output: Output | None = None, **settings: Any
) -> Score:
    built = build_scorer(kind, settings, location=f"scorers[0].{kind}")
    case = Case("c3", {}, expected=expected, meta={"schema": {"type": "integer"}}, line=4)
    return await built.score(case, output or Output(text), ScoreContext())


def call(name: str, arguments: Any) -> ToolCall:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    return ToolCall(name, parsed, raw)


def calls(*items: ToolCall) -> Output:
    return Output("", tool_calls=items)


# --- validity ------------------------------------------------------------------------


async def test_json_valid_with_and_without_fences() -> None:
    assert await score("json_valid", '{"a": 1}') == Score(1.0, True, "valid JSON")
    fenced = '```json\n{"a": 1}\n```'
    assert (await score("json_valid", fenced)).passed
    refused = await score("json_valid", fenced, allow_fence=False)
    assert not refused.passed
    assert refused.explanation.startswith("not valid JSON: Expecting value at line 1 column 1")
    broken = await score("json_valid", '{"a": 1,}')
    assert broken.value == 0.0
    assert "line 1 column 9" in broken.explanation


# --- schema --------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


async def test_json_schema_pass_and_fail_explains_where() -> None:
    assert (await score("json_schema", '{"name": "Ann", "age": 3}', schema=SCHEMA)).passed
    failed = await score("json_schema", '{"name": "Ann", "age": -1}', schema=SCHEMA)
    assert failed == Score(0.0, False, "$.age: -1 is less than the minimum of 0")
    missing = await score("json_schema", '{"name": "Ann"}', schema=SCHEMA)
    assert missing.explanation == "$: 'age' is a required property"
    several = await score("json_schema", '{"name": 1, "age": "x", "extra": 1}', schema=SCHEMA)
    assert "(+2 more)" in several.explanation
    assert (await score("json_schema", "not json", schema=SCHEMA)).explanation.startswith("not valid JSON")


async def test_json_schema_uses_draft_2020_12() -> None:
    # prefixItems is 2020-12 only: an older draft would ignore it and pass.
    schema = {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}
    assert (await score("json_schema", '["a", 1]', schema=schema)).passed
    assert not (await score("json_schema", '["a", "b"]', schema=schema)).passed


async def test_json_schema_from_the_case() -> None:
    assert (await score("json_schema", "12", field="schema")).passed
    assert not (await score("json_schema", '"12"', field="schema")).passed
    assert (await score("json_schema", "[]", {"type": "array"})).passed
    with pytest.raises(InvalidRequest, match=r"case 'c3' \(line 4\) has invalid JSON Schema"):
        await score("json_schema", "1", {"type": "nonsense"})


def test_invalid_schema_in_settings_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as exc:
        build_scorer("json_schema", {"schema": {"type": 5}}, location="scorers[1].json_schema")
    [problem] = exc.value.problems
    assert problem.location == "scorers[1].json_schema.schema"
    assert problem.message.startswith("invalid JSON Schema")


# --- one field -----------------------------------------------------------------------


def test_parse_path() -> None:
    assert parse_path("a.b[0].c") == ["a", "b", 0, "c"]
    assert parse_path("$.items[-1]") == ["items", -1]
    assert parse_path('a["x.y"]') == ["a", "x.y"]
    for bad in ["", "a..b", "a.", "a[b]", "$"]:
        with pytest.raises(ValueError, match="cannot read the path"):
            parse_path(bad)


def test_bad_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as exc:
        build_scorer("json_field", {"path": "a..b"}, location="scorers[0].json_field")
    assert exc.value.problems[0].location == "scorers[0].json_field.path"


async def test_json_field_equality() -> None:
    text = '{"order": {"items": [{"sku": "A1", "qty": 2}], "paid": true}}'
    assert await score("json_field", text, "A1", path="order.items[0].sku") == Score(
        1.0, True, "order.items[0].sku is 'A1'"
    )
    assert (await score("json_field", text, path="order.items[0].qty", value=2.0)).passed
    failed = await score("json_field", text, 3, path="order.items[0].qty")
    assert failed == Score(0.0, False, "order.items[0].qty is 2, expected 3")
    # JSON's true is not the number 1.
    assert not (await score("json_field", text, path="order.paid", value=1)).passed
    assert (await score("json_field", text, path="order.paid", value=True)).passed
    absent = await score("json_field", text, "x", path="order.items[3].sku")
    assert absent == Score(0.0, False, "no order.items[3].sku in the output")
    assert (await score("json_field", "nope", "x", path="a")).explanation.startswith("not valid JSON")
    # An explicit null is a value to compare with, not "use expected".
    assert (await score("json_field", '{"a": null}', "ignored", path="a", value=None)).passed


def test_json_equal() -> None:
    assert json_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not json_equal(True, 1)
    assert not json_equal(0, False)
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal("1", 1)
    assert json_equal(None, None)


# --- tool calls ----------------------------------------------------------------------

WEATHER = {"name": "get_weather", "arguments": {"city": "Paris", "units": "c"}}


async def test_tool_call_exact_match() -> None:
    ok = await score(
        "tool_call", expected=WEATHER, output=calls(call("get_weather", {"units": "c", "city": "Paris"}))
    )
    assert ok == Score(1.0, True, "tool call match (get_weather)")


async def test_tool_call_explains_what_differs() -> None:
    wrong_name = await score("tool_call", expected=WEATHER, output=calls(call("search", {"q": "weather"})))
    assert wrong_name == Score(0.0, False, "no call to 'get_weather' (called search)")
    wrong_value = await score(
        "tool_call", expected=WEATHER, output=calls(call("get_weather", {"city": "paris", "units": "c"}))
    )
    assert wrong_value.explanation == "get_weather: argument 'city' is 'paris', expected 'Paris'"
    missing = await score("tool_call", expected=WEATHER, output=calls(call("get_weather", {"city": "Paris"})))
    assert missing.explanation == "get_weather: missing argument 'units'"
    extra = await score(
        "tool_call", expected=WEATHER, output=calls(call("get_weather", {**WEATHER["arguments"], "days": 3}))
    )
    assert extra.explanation == "get_weather: unexpected argument 'days'"
    invalid = await score("tool_call", expected=WEATHER, output=calls(call("get_weather", "{city: Paris")))
    assert invalid.explanation == "get_weather: arguments are not valid JSON: '{city: Paris'"
    none = await score("tool_call", expected=WEATHER, output=Output("It is sunny."))
    assert none == Score(0.0, False, "no tool call (expected 'get_weather')")


async def test_tool_call_subset_and_ignore() -> None:
    actual = calls(call("get_weather", {"city": "Paris", "units": "c", "days": 3}))
    assert not (await score("tool_call", expected=WEATHER, output=actual)).passed
    assert (await score("tool_call", expected=WEATHER, output=actual, arguments="subset")).passed
    assert (await score("tool_call", expected="get_weather", output=actual)).passed
    other = calls(call("get_weather", {"city": "Rome"}))
    assert (await score("tool_call", expected=WEATHER, output=other, arguments="ignore")).passed
    # Expected arguments may be given as the JSON string the API uses.
    as_string = {"name": "get_weather", "arguments": json.dumps(WEATHER["arguments"])}
    assert (
        await score("tool_call", expected=as_string, output=calls(call("get_weather", WEATHER["arguments"])))
    ).passed


async def test_several_tool_calls_unordered_ordered_and_extra() -> None:
    a = {"name": "lookup", "arguments": {"id": 1}}
    b = {"name": "lookup", "arguments": {"id": 2}}
    swapped = calls(call("lookup", {"id": 2}), call("lookup", {"id": 1}))
    assert (
        await score("tool_call", expected=[a, b], output=swapped)
    ).explanation == "2 tool calls match (lookup, lookup)"
    out_of_order = await score("tool_call", expected=[a, b], output=swapped, ordered=True)
    assert not out_of_order.passed
    too_many = calls(call("lookup", {"id": 1}), call("log", {}), call("lookup", {"id": 2}))
    counted = await score("tool_call", expected=[a, b], output=too_many)
    assert counted == Score(0.0, False, "3 tool calls (lookup, log, lookup), expected 2")
    assert (await score("tool_call", expected=[a, b], output=too_many, allow_extra=True)).passed
    assert (await score("tool_call", expected=[a, b], output=too_many, allow_extra=True, ordered=True)).passed


async def test_subset_matching_backtracks() -> None:
    # Greedy matching would give the first call to the first expectation and then fail.
    wants = [{"name": "f", "arguments": {"x": 1}}, {"name": "f", "arguments": {"x": 1, "y": 2}}]
    actual = calls(call("f", {"x": 1, "y": 2}), call("f", {"x": 1}))
    assert (await score("tool_call", expected=wants, output=actual, arguments="subset")).passed


async def test_bad_expected_tool_call_names_the_case() -> None:
    with pytest.raises(InvalidRequest, match=r"case 'c3' \(line 4\) expects tool calls as"):
        await score("tool_call", expected={"arguments": {}}, output=calls(call("f", {})))
