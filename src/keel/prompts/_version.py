"""A prompt version (immutable), what a new one is made of, and prompt/label names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keel.core import InvalidRequest, JSONObject
from keel.prompts._template import (
    PROMPT_TYPES,
    CompiledTemplate,
    PromptType,
    RenderedPrompt,
    validate_template,
)
from keel.prompts._variables import Variable, bind_variables, parse_variables, type_name

# No '@', '#', ':' or '/': ``prompt:name@label`` and ``name#3`` parse unambiguously.
_PROMPT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

LATEST = "latest"  # automatic: the highest version; never stored
PRODUCTION = "production"  # what a reference without label or version resolves to
PROTECTED_BY_DEFAULT = frozenset({PRODUCTION})

# A version's model config may not set what belongs to the caller's request itself.
_RESERVED_CONFIG = frozenset({"messages", "prompt", "stream", "stream_options"})
# Applied to chat requests only (a completions request has no use for them).
CHAT_ONLY_CONFIG = frozenset({"tools", "tool_choice", "parallel_tool_calls", "response_format"})


def check_prompt_name(name: object) -> str:
    if not isinstance(name, str) or not _PROMPT_NAME.match(name):
        raise InvalidRequest(
            f"Invalid prompt name {name!r}: letters, digits, '.', '_' and '-' (at most 128), "
            "starting with a letter or digit.",
            param="name",
        )
    return name


def check_label(label: object) -> str:
    if not isinstance(label, str) or not _LABEL.match(label):
        raise InvalidRequest(
            f"Invalid label {label!r}: letters, digits, '.', '_' and '-' (at most 64), "
            "starting with a letter or digit.",
            param="label",
        )
    return label


def check_prompt_type(value: object) -> PromptType:
    if value not in PROMPT_TYPES:
        raise InvalidRequest(f"Prompt type must be 'text' or 'chat', not {value!r}.", param="type")
    return value


@dataclass(frozen=True, slots=True)
class PromptRef:
    """``name``, ``name@label`` or ``name#version``."""

    name: str
    label: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}#{self.version}"
        return f"{self.name}@{self.label}" if self.label is not None else self.name


def parse_prompt_ref(text: str, *, param: str | None = None) -> PromptRef:
    """``support-answer``, ``support-answer@staging`` or ``support-answer#3``."""
    name, at, label = text.partition("@")
    version: int | None = None
    if not at:
        name, hashed, number = text.partition("#")
        if hashed:
            if not number.isdigit() or int(number) < 1:
                raise InvalidRequest(
                    f"Invalid prompt reference {text!r}: '#' takes a version number.", param=param
                )
            version = int(number)
    try:
        check_prompt_name(name)
        if at:
            check_label(label)
    except InvalidRequest as exc:
        raise InvalidRequest(f"Invalid prompt reference {text!r}: {exc.message}", param=param) from None
    return PromptRef(name, label if at else None, version)


def check_model_config(data: object) -> JSONObject:
    """A version's model config: request fields (``model``, ``temperature``,
    ``max_tokens``, ``tools``, ``response_format`` and any other) applied to a request
    that does not set them."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InvalidRequest("'model_config' must be an object.", param="model_config")
    config = dict(data)
    for key in config:
        if not isinstance(key, str):
            raise InvalidRequest("'model_config' keys must be strings.", param="model_config")
        if key in _RESERVED_CONFIG:
            raise InvalidRequest(
                f"'model_config' cannot set '{key}': it belongs to the request.", param="model_config"
            )
    _expect(config, "model", lambda v: isinstance(v, str) and bool(v), "a non-empty string")
    _expect(
        config,
        "temperature",
        lambda v: type_name(v) in ("integer", "number") and 0 <= v <= 2,
        "a number from 0 to 2",
    )
    _expect(config, "top_p", lambda v: type_name(v) in ("integer", "number") and 0 <= v <= 1, "0 to 1")
    for key in ("max_tokens", "max_completion_tokens"):
        _expect(config, key, lambda v: type_name(v) == "integer" and v >= 1, "a positive integer")
    _expect(config, "tools", lambda v: isinstance(v, list), "a list")
    _expect(config, "response_format", lambda v: isinstance(v, dict), "an object")
    return config


def _expect(config: JSONObject, key: str, ok: Any, what: str) -> None:
    if key in config and config[key] is not None and not ok(config[key]):
        raise InvalidRequest(
            f"'model_config.{key}' must be {what}, not {config[key]!r}.", param=f"model_config.{key}"
        )


@dataclass(frozen=True, slots=True)
class VersionContent:
    """What a version is made of, validated: the template compiles in the sandbox and
    uses only declared variables."""

    template: str | list[JSONObject]
    variables: tuple[Variable, ...]
    model_config: JSONObject

    @classmethod
    def parse(
        cls,
        prompt_type: PromptType,
        *,
        template: object,
        variables: object = None,
        model_config: object = None,
        prompt: str = "",
    ) -> VersionContent:
        declared = parse_variables(variables)
        checked = validate_template(prompt_type, template, [v.name for v in declared], f"'{prompt}'")
        content = cls(checked, declared, check_model_config(model_config))
        CompiledTemplate(prompt_type, checked, f"'{prompt}'")  # also catches errors only compile finds
        return content

    def to_json(self) -> JSONObject:
        return {
            "template": self.template,
            "variables": [v.to_json() for v in self.variables],
            "model_config": self.model_config,
        }


@dataclass(frozen=True, slots=True)
class PromptVersion:
    """One immutable version of a prompt. ``render`` compiles the template on first use
    and keeps it (versions never change, so neither does the compiled form)."""

    prompt_name: str
    prompt_type: PromptType
    version: int
    template: str | list[JSONObject]
    variables: tuple[Variable, ...]
    model_config: JSONObject
    commit_message: str
    author: str
    created_at: datetime
    team_id: str | None = None
    _compiled: list[CompiledTemplate] = field(default_factory=list, repr=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.prompt_name}#{self.version}"

    def render(self, variables: Mapping[str, Any] | None = None) -> RenderedPrompt:
        """Render with ``variables`` (checked against the declarations; defaults filled
        in). A missing or mistyped variable, or a failing template, is InvalidRequest."""
        values = bind_variables(self.variables, variables or {}, f"'{self.ref}'")
        if not self._compiled:
            # A race compiles twice at worst; both results are the same.
            self._compiled.append(CompiledTemplate(self.prompt_type, self.template, f"'{self.ref}'"))
        return self._compiled[0].render(values)

    @property
    def content(self) -> VersionContent:
        return VersionContent(self.template, self.variables, self.model_config)

    def to_json(self) -> JSONObject:
        return {
            "name": self.prompt_name,
            "type": self.prompt_type,
            "version": self.version,
            **self.content.to_json(),
            "commit_message": self.commit_message,
            "author": self.author,
            "created_at": self.created_at.isoformat(),
        }
