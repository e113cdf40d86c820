"""Scorers of structured output: JSON validity, JSON Schema conformance (the
``jsonschema`` package, draft 2020-12), one JSON field's value, and tool calls (name and
arguments)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from keel.core import SettingError
from keel.evals._scorer import BaseScorer, scorer, show
from keel.evals._types import Case, Output, Score, ToolCall

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

_FENCE = re.compile(r"^\s*```(?:json|JSON)?[ \t]*\n(?P<body>.*?)\n?\s*```\s*$", re.S)


def parse_json(text: str, allow_fence: bool) -> tuple[Any, str | None]:
    """``(value, None)`` for a text that is one JSON value (in a ```json fence when
    allowed), else ``(None, why)``."""
    body = text
    if allow_fence and (fenced := _FENCE.match(text)):
        body = fenced.group("body")
    try:
        return json.loads(body), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: numbers compare by value (1 == 1.0), but a boolean is
    never a number (Python's ``True == 1`` is not JSON's)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


class JsonValid(BaseScorer):
    def __init__(self, allow_fence: bool) -> None:
        super().__init__(binary=True)
        self.allow_fence = allow_fence

    def check(self, case: Case, output: Output) -> Score:
        _, problem = parse_json(output.text, self.allow_fence)
        return self.verdict(problem is None, problem or "valid JSON")


@scorer("json_valid")
def json_valid(allow_fence: bool = True) -> JsonValid:
    """The output is one JSON value (inside a ```json fence``` when ``allow_fence``)."""
    return JsonValid(allow_fence)


# --- JSON Schema -----------------------------------------------------------------------


def _validator(schema: Any) -> Validator:
    """A draft 2020-12 validator for ``schema``; ``ValueError`` when it is no schema."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, Mapping | bool):
        raise ValueError(f"a JSON Schema is an object or a boolean, not {type(schema).__name__}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"invalid JSON Schema: {exc.message}") from None
    validator: Validator = Draft202012Validator(schema)
    return validator


class JsonSchema(BaseScorer):
    def __init__(self, validator: Validator | None, allow_fence: bool, field: str | None) -> None:
        super().__init__(binary=True, field=field)
        self.validator = validator
        self.allow_fence = allow_fence

    def check(self, case: Case, output: Output) -> Score:
        validator = self.validator
        if validator is None:
            try:
                validator = _validator(self.expected(case))
            except ValueError as exc:
                raise self.case_error(case, f"has {exc}") from None
        value, problem = parse_json(output.text, self.allow_fence)
        if problem is not None:
            return self.verdict(False, problem)
        from jsonschema.exceptions import best_match

        errors = list(validator.iter_errors(value))
        if not errors:
            return self.verdict(True, "conforms to the schema")
        first = best_match(errors)
        where = first.json_path if first.path else "$"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return self.verdict(False, f"{where}: {first.message}{more}"[:300])


@scorer("json_schema")
def json_schema(
    schema: dict[str, Any] | bool | None = None, allow_fence: bool = True, field: str | None = None
) -> JsonSchema:
    """The output is JSON that conforms to ``schema`` (JSON Schema draft 2020-12), or to
    the schema in the case (``expected``, or the case field named by ``field``)."""
    validator = None
    if schema is not None:
        try:
            validator = _validator(schema)
        except ValueError as exc:
            raise SettingError("schema", str(exc)) from None
    return JsonSchema(validator, allow_fence, field)


# --- one field ----------------------------------------------------------------------

_KEY = re.compile(r"[^.\[\]]+")
_BRACKET = re.compile(r"\[(?:(?P<index>-?\d+)|(?P<quoted>\"[^\"]*\"|'[^']*'))\]")

PathPart = str | int


def parse_path(path: str) -> list[PathPart]:
    """``a.b[0].c`` (``$`` first optional, ``["key.with.dots"]`` for odd keys) as keys
    and indexes; ``ValueError`` for anything else."""
    text = path.removeprefix("$").removeprefix(".") if path.startswith("$") else path
    parts: list[PathPart] = []
    pos = 0
    key_allowed = True
    while pos < len(text):
        if text[pos] == "[" and (m := _BRACKET.match(text, pos)):
            parts.append(int(m.group("index")) if m.group("index") is not None else m.group("quoted")[1:-1])
            key_allowed = False
        elif text[pos] == "." and parts and not key_allowed:
            m = None
            key_allowed = True
            pos += 1
            continue
        elif key_allowed and (m := _KEY.match(text, pos)):
            parts.append(m.group(0))
            key_allowed = False
        else:
            raise ValueError(f"cannot read the path {path!r} at {text[pos:]!r}")
        pos = m.end()
    if not parts or key_allowed:
        raise ValueError(f"cannot read the path {path!r}" + ("" if parts else ": it is empty"))
    return parts


def format_path(parts: Sequence[PathPart]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def lookup(value: Any, parts: Sequence[PathPart]) -> tuple[bool, Any]:
    for part in parts:
        if isinstance(part, int):
            if not isinstance(value, list) or not -len(value) <= part < len(value):
                return False, None
            value = value[part]
        else:
            if not isinstance(value, Mapping) or part not in value:
                return False, None
            value = value[part]
    return True, value


_UNSET: Any = object()


class JsonField(BaseScorer):
    def __init__(self, path: list[PathPart], value: Any, allow_fence: bool, field: str | None) -> None:
        super().__init__(binary=True, field=field)
        self.path = path
        self.value = value
        self.allow_fence = allow_fence

    def check(self, case: Case, output: Output) -> Score:
        wanted = self.expected(case) if self.value is _UNSET else self.value
        parsed, problem = parse_json(output.text, self.allow_fence)
        where = format_path(self.path)
        if problem is not None:
            return self.verdict(False, problem)
        found, got = lookup(parsed, self.path)
        if not found:
            return self.verdict(False, f"no {where} in the output")
        if json_equal(got, wanted):
            return self.verdict(True, f"{where} is {show(wanted)}")
        return self.verdict(False, f"{where} is {show(got)}, expected {show(wanted)}")


@scorer("json_field")
def json_field(
    path: str, value: Any = _UNSET, allow_fence: bool = True, field: str | None = None
) -> JsonField:
    """The output is JSON whose value at ``path`` (``a.b[0].c``) equals ``value``, or
    the expected value when ``value`` is not set."""
    try:
        parts = parse_path(path)
    except ValueError as exc:
        raise SettingError("path", str(exc)) from None
    return JsonField(parts, value, allow_fence, field)


# --- tool calls ---------------------------------------------------------------------

ArgumentsMode = Literal["exact", "subset", "ignore"]


def _subset(expected: Any, actual: Any) -> bool:
    """Every key of ``expected`` is in ``actual`` with a matching value (objects are
    compared as subsets, recursively; everything else by equality)."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            k in actual and _subset(v, actual[k]) for k, v in expected.items()
        )
    return json_equal(expected, actual)


class ExpectedCall:
    def __init__(self, name: str, arguments: Any) -> None:
        self.name = name
        self.arguments = arguments  # _UNSET: not specified


class ToolCallScorer(BaseScorer):
    def __init__(self, mode: ArgumentsMode, ordered: bool, allow_extra: bool, field: str | None) -> None:
        super().__init__(binary=True, field=field)
        self.mode = mode
        self.ordered = ordered
        self.allow_extra = allow_extra

    def _expected_calls(self, case: Case) -> list[ExpectedCall]:
        raw = self.expected(case)
        items = raw if isinstance(raw, list) else [raw]
        calls = []
        for item in items:
            if isinstance(item, str):
                calls.append(ExpectedCall(item, _UNSET))
                continue
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                raise self.case_error(case, "expects tool calls as {name, arguments} objects")
            arguments = item.get("arguments", _UNSET)
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments)
                except ValueError:
                    raise self.case_error(
                        case, f"has arguments for {item['name']!r} that are not JSON"
                    ) from None
            calls.append(ExpectedCall(item["name"], arguments))
        return calls

    def _difference(self, want: ExpectedCall, got: ToolCall) -> str | None:
        """Why ``got`` is not ``want`` (None when it is)."""
        if got.name != want.name:
            return f"called {got.name!r}, expected {want.name!r}"
        if self.mode == "ignore" or want.arguments is _UNSET:
            return None
        if got.arguments is None:
            return f"{got.name}: arguments are not valid JSON: {show(got.raw_arguments)}"
        exact = self.mode == "exact"
        if exact and json_equal(want.arguments, got.arguments):
            return None
        if not exact and _subset(want.arguments, got.arguments):
            return None
        if isinstance(want.arguments, Mapping) and isinstance(got.arguments, Mapping):
            for key, value in want.arguments.items():
                if key not in got.arguments:
                    return f"{got.name}: missing argument {key!r}"
                if not (
                    json_equal(value, got.arguments[key]) if exact else _subset(value, got.arguments[key])
                ):
                    return (
                        f"{got.name}: argument {key!r} is {show(got.arguments[key])}, expected {show(value)}"
                    )
            extra = sorted(set(got.arguments) - set(want.arguments))
            return (
                f"{got.name}: unexpected argument {extra[0]!r}" if extra else f"{got.name}: arguments differ"
            )
        return f"{got.name}: arguments are {show(got.arguments)}, expected {show(want.arguments)}"

    def _match(self, wants: list[ExpectedCall], calls: tuple[ToolCall, ...]) -> bool:
        if self.ordered:
            if self.allow_extra:
                pos = 0
                for call in calls:
                    if pos < len(wants) and self._difference(wants[pos], call) is None:
                        pos += 1
                return pos == len(wants)
            return all(self._difference(w, c) is None for w, c in zip(wants, calls, strict=True))

        # Unordered: find one distinct call for each expected call (backtracking: with
        # subset matching a greedy choice can take a call a later expectation needs).
        def assign(i: int, used: frozenset[int]) -> bool:
            if i == len(wants):
                return True
            return any(
                j not in used and self._difference(wants[i], call) is None and assign(i + 1, used | {j})
                for j, call in enumerate(calls)
            )

        return assign(0, frozenset())

    def check(self, case: Case, output: Output) -> Score:
        wants = self._expected_calls(case)
        calls = output.tool_calls
        names = ", ".join(c.name for c in calls)
        if not calls:
            return self.verdict(False, f"no tool call (expected {wants[0].name!r})")
        if not self.allow_extra and len(calls) != len(wants):
            return self.verdict(False, f"{len(calls)} tool calls ({names}), expected {len(wants)}")
        if len(calls) < len(wants):
            return self.verdict(False, f"{len(calls)} tool calls ({names}), expected at least {len(wants)}")
        if self._match(wants, calls):
            what = "tool call" if len(wants) == 1 else f"{len(wants)} tool calls"
            return self.verdict(True, f"{what} match ({', '.join(w.name for w in wants)})")
        # Explain with the first expected call that has no match, against the call most
        # like it (the same name when there is one).
        for want in wants:
            if any(self._difference(want, c) is None for c in calls):
                continue
            same = [c for c in calls if c.name == want.name]
            if same:
                return self.verdict(False, self._difference(want, same[0]) or "arguments differ")
            return self.verdict(False, f"no call to {want.name!r} (called {names})")
        return self.verdict(False, f"tool calls out of order ({names})")


@scorer("tool_call")
def tool_call(
    arguments: ArgumentsMode = "exact",
    ordered: bool = False,
    allow_extra: bool = False,
    field: str | None = None,
) -> ToolCallScorer:
    """The model called the expected tool(s): ``expected`` is ``{name, arguments}`` (or
    a name, or a list of them). ``arguments``: ``exact`` equality of the parsed
    arguments, ``subset`` (the expected keys match), or ``ignore``; ``ordered``: the
    calls come in the expected order; ``allow_extra``: other calls may be made too."""
    return ToolCallScorer(arguments, ordered, allow_extra, field)
