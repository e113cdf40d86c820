"""Declared template variables: a name, a type, and a default or ``required``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from keel.core import InvalidRequest, JSONObject

VariableType = Literal["string", "number", "integer", "boolean", "list", "object"]
VARIABLE_TYPES: tuple[VariableType, ...] = get_args(VariableType)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_SPEC_KEYS = frozenset({"name", "type", "default", "required", "description"})
# Marks "no default" apart from a default of null.
_NO_DEFAULT: Any = object()


def type_name(value: object) -> str:
    """How an error message names a JSON value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def matches_type(value: object, expected: VariableType) -> bool:
    # bool is an int in Python, never in a prompt's contract.
    if expected == "string":
        return isinstance(value, str)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "list":
        return isinstance(value, list | tuple)
    return isinstance(value, dict)


@dataclass(frozen=True, slots=True)
class Variable:
    """One declared variable. ``required`` variables have no default."""

    name: str
    type: VariableType = "string"
    required: bool = True
    default: Any = None
    description: str | None = None

    def to_json(self) -> JSONObject:
        data: JSONObject = {"name": self.name, "type": self.type, "required": self.required}
        if not self.required:
            data["default"] = self.default
        if self.description:
            data["description"] = self.description
        return data


def parse_variables(data: object) -> tuple[Variable, ...]:
    """Declared variables from JSON: a list of ``{name, type, default, required,
    description}`` objects, or a mapping ``name -> spec`` where a spec may be just the
    type name (``{"question": "string"}``). A variable with a default is optional."""
    if data is None:
        return ()
    items: list[tuple[str, object]]
    if isinstance(data, Mapping):
        items = [(f"variables.{name}", {"name": name, **_as_spec(spec)}) for name, spec in data.items()]
    elif isinstance(data, Sequence) and not isinstance(data, str):
        items = [(f"variables[{i}]", spec) for i, spec in enumerate(data)]
    else:
        raise InvalidRequest("'variables' must be a list of variable objects.", param="variables")
    variables = [_parse_one(where, spec) for where, spec in items]
    seen: set[str] = set()
    for variable in variables:
        if variable.name in seen:
            raise InvalidRequest(f"Variable '{variable.name}' is declared twice.", param="variables")
        seen.add(variable.name)
    return tuple(variables)


def _as_spec(spec: object) -> dict[str, Any]:
    if isinstance(spec, str):
        return {"type": spec}
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        return dict(spec)
    raise InvalidRequest(
        f"A variable's spec must be a type name or an object, not {type_name(spec)}.", param="variables"
    )


def _parse_one(where: str, spec: object) -> Variable:
    if not isinstance(spec, Mapping):
        raise InvalidRequest(f"{where} must be an object with 'name' and 'type'.", param="variables")
    unknown = sorted(set(spec) - _SPEC_KEYS)
    if unknown:
        raise InvalidRequest(
            f"{where} has unknown field '{unknown[0]}' (fields: {', '.join(sorted(_SPEC_KEYS))}).",
            param="variables",
        )
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidRequest(
            f"{where}: variable name {name!r} must be an identifier (letters, digits, '_').",
            param="variables",
        )
    kind = spec.get("type", "string")
    if kind not in VARIABLE_TYPES:
        raise InvalidRequest(
            f"Variable '{name}' has unknown type {kind!r} (types: {', '.join(VARIABLE_TYPES)}).",
            param="variables",
        )
    kind = cast("VariableType", kind)
    default = spec.get("default", _NO_DEFAULT)
    required = spec.get("required", default is _NO_DEFAULT)
    if not isinstance(required, bool):
        raise InvalidRequest(f"Variable '{name}': 'required' must be true or false.", param="variables")
    if required and default is not _NO_DEFAULT:
        raise InvalidRequest(
            f"Variable '{name}' is required and has a default: drop one of them.", param="variables"
        )
    if default is _NO_DEFAULT:
        default = None
    if default is not None and not matches_type(default, kind):
        raise InvalidRequest(
            f"Variable '{name}' is of type {kind}, but its default is {type_name(default)}.",
            param="variables",
        )
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequest(f"Variable '{name}': 'description' must be a string.", param="variables")
    return Variable(name=name, type=kind, required=required, default=default, description=description)


def bind_variables(declared: Sequence[Variable], given: Mapping[str, Any], prompt: str) -> dict[str, Any]:
    """The values a render uses: ``given`` checked against the declarations, defaults
    filled in. Variables that are not declared are ignored, so that moving a label to a
    version that dropped a variable does not break callers that still send it."""
    values: dict[str, Any] = {}
    for variable in declared:
        if variable.name in given and given[variable.name] is not None:
            value = given[variable.name]
            if not matches_type(value, variable.type):
                raise InvalidRequest(
                    f"Variable '{variable.name}' of prompt {prompt} must be {variable.type}, "
                    f"not {type_name(value)}.",
                    param=f"prompt.variables.{variable.name}",
                )
            values[variable.name] = value
        elif variable.required:
            raise InvalidRequest(
                f"Missing variable '{variable.name}' for prompt {prompt}.",
                param=f"prompt.variables.{variable.name}",
            )
        else:
            values[variable.name] = variable.default
    return values
