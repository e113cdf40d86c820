"""The part of JSON Schema (draft 2020-12) that checks model output, without the
``jsonschema`` package: types, enum/const, object properties/required/
additionalProperties, array items/min/maxItems/uniqueItems, string length and
pattern, numeric bounds, allOf/anyOf/oneOf/not, and local ``$ref`` (``#/$defs/...``).

A schema that uses any other validation keyword is refused when the policy is built,
so a check is never silently skipped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_SUPPORTED = frozenset(
    [
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "$ref",
        "$defs",
        "definitions",
        "minProperties",
        "maxProperties",
    ]
)
_ANNOTATIONS = frozenset(
    [
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "format",
        "readOnly",
        "writeOnly",
        "deprecated",
    ]
)
_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def check_schema(schema: Any, path: str = "#") -> None:
    """Raise ValueError naming the first unsupported keyword or malformed part."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, Mapping):
        raise ValueError(f"schema at {path} must be an object or a boolean")
    for key, value in schema.items():
        if key not in _SUPPORTED and key not in _ANNOTATIONS:
            raise ValueError(f"schema keyword {key!r} at {path} is not supported")
        if key in ("properties", "$defs", "definitions"):
            for name, sub in value.items():
                check_schema(sub, f"{path}/{key}/{name}")
        elif key in ("items", "additionalProperties", "not") and not isinstance(value, bool):
            check_schema(value, f"{path}/{key}")
        elif key in ("allOf", "anyOf", "oneOf", "prefixItems"):
            for i, sub in enumerate(value):
                check_schema(sub, f"{path}/{key}/{i}")
        elif key == "pattern":
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid pattern at {path}: {exc}") from None
        elif key == "$ref" and not str(value).startswith("#"):
            raise ValueError(f"only local $ref (#/...) is supported, at {path}")


def validate(instance: Any, schema: Any, root: Any = None, path: str = "$") -> list[str]:
    """Every way ``instance`` breaks ``schema``, as ``path: message`` lines."""
    root = schema if root is None else root
    if schema is True:
        return []
    if schema is False:
        return [f"{path}: no value is allowed here"]
    errors: list[str] = []
    if "$ref" in schema:
        errors += validate(instance, _resolve(root, schema["$ref"]), root, path)
    if "type" in schema:
        wanted = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(instance, t) for t in wanted):
            return [*errors, f"{path}: expected {' or '.join(wanted)}, got {_type_name(instance)}"]
    if "enum" in schema and not any(_equal(instance, v) for v in schema["enum"]):
        errors.append(f"{path}: not one of the allowed values")
    if "const" in schema and not _equal(instance, schema["const"]):
        errors.append(f"{path}: must equal the constant")
    if isinstance(instance, dict):
        errors += _object(instance, schema, root, path)
    elif isinstance(instance, list):
        errors += _array(instance, schema, root, path)
    elif isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            errors.append(f"{path}: does not match the pattern")
    elif isinstance(instance, int | float) and not isinstance(instance, bool):
        errors += _number(instance, schema, path)
    for sub in schema.get("allOf", []):
        errors += validate(instance, sub, root, path)
    if "anyOf" in schema and not any(not validate(instance, s, root, path) for s in schema["anyOf"]):
        errors.append(f"{path}: matches none of anyOf")
    if "oneOf" in schema:
        matched = sum(not validate(instance, s, root, path) for s in schema["oneOf"])
        if matched != 1:
            errors.append(f"{path}: matches {matched} of oneOf (exactly 1 needed)")
    if "not" in schema and not validate(instance, schema["not"], root, path):
        errors.append(f"{path}: matches a schema it must not")
    return errors


def _object(instance: dict[str, Any], schema: Mapping[str, Any], root: Any, path: str) -> list[str]:
    errors = [
        f"{path}: missing required property {name!r}"
        for name in schema.get("required", [])
        if name not in instance
    ]
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, value in instance.items():
        if key in properties:
            errors += validate(value, properties[key], root, f"{path}.{key}")
        elif extra is False:
            errors.append(f"{path}: unexpected property {key!r}")
        elif isinstance(extra, Mapping):
            errors += validate(value, extra, root, f"{path}.{key}")
    if len(instance) < schema.get("minProperties", 0):
        errors.append(f"{path}: fewer than {schema['minProperties']} properties")
    if "maxProperties" in schema and len(instance) > schema["maxProperties"]:
        errors.append(f"{path}: more than {schema['maxProperties']} properties")
    return errors


def _array(instance: list[Any], schema: Mapping[str, Any], root: Any, path: str) -> list[str]:
    errors = []
    prefix = schema.get("prefixItems", [])
    for i, value in enumerate(instance):
        if i < len(prefix):
            errors += validate(value, prefix[i], root, f"{path}[{i}]")
        elif "items" in schema:
            errors += validate(value, schema["items"], root, f"{path}[{i}]")
    if len(instance) < schema.get("minItems", 0):
        errors.append(f"{path}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(instance) > schema["maxItems"]:
        errors.append(f"{path}: more than {schema['maxItems']} items")
    if schema.get("uniqueItems") and len({repr(_canonical(v)) for v in instance}) < len(instance):
        errors.append(f"{path}: items are not unique")
    return errors


def _number(instance: float, schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    if "minimum" in schema and instance < schema["minimum"]:
        errors.append(f"{path}: less than {schema['minimum']}")
    if "maximum" in schema and instance > schema["maximum"]:
        errors.append(f"{path}: greater than {schema['maximum']}")
    if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
        errors.append(f"{path}: not greater than {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema and instance >= schema["exclusiveMaximum"]:
        errors.append(f"{path}: not less than {schema['exclusiveMaximum']}")
    step = schema.get("multipleOf")
    if step and not math.isclose(instance / step, round(instance / step), abs_tol=1e-9):
        errors.append(f"{path}: not a multiple of {step}")
    return errors


def _is_type(instance: Any, name: str) -> bool:
    if name == "integer":
        return (isinstance(instance, int) and not isinstance(instance, bool)) or (
            isinstance(instance, float) and instance.is_integer()
        )
    if name == "number":
        return isinstance(instance, int | float) and not isinstance(instance, bool)
    expected = _TYPES.get(name)
    return (
        expected is not None
        and isinstance(instance, expected)
        and not (name != "boolean" and isinstance(instance, bool))
    )


def _type_name(instance: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(instance, name):
            return name
    return type(instance).__name__


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return sorted((k, _canonical(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(_canonical(a) == _canonical(b))


def _resolve(root: Any, ref: str) -> Any:
    node = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            raise ValueError(f"unresolvable $ref {ref!r}")
        node = node[part]
    return node
