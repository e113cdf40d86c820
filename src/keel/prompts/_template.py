"""Templates: Jinja2 in an immutable sandbox with strict undefined variables.

A text prompt's template is one string. A chat prompt's template is a list of messages
``{"role": ..., "content": ..., "name"?: ...}`` whose contents are templates. One message
may be the history placeholder ``{"role": "placeholder", "content": "{{ history }}"}``:
the caller's own messages are spliced in where it stands (its content is never
rendered; ``{{ history }}`` is the convention). Without a placeholder the caller's
messages follow the template's.

The sandbox refuses attribute access to Python internals (``__class__``) and any
method that mutates (``list.append``); ``range`` is capped by Jinja2 and ``*``/``**``
are capped here, so a template cannot build a gigabyte string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from keel.core import InvalidRequest, JSONObject
from keel.prompts._variables import type_name

PromptType = Literal["text", "chat"]
PROMPT_TYPES: tuple[PromptType, ...] = ("text", "chat")
PLACEHOLDER_ROLE = "placeholder"

# A rendered piece larger than this is a template bug (or an attack), not a prompt.
MAX_RENDERED_CHARS = 1_000_000
_MESSAGE_KEYS = frozenset({"role", "content", "name"})


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_RENDERED_CHARS:
                    raise SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


ENVIRONMENT = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
ENVIRONMENT.globals.pop("lipsum", None)
_GLOBALS = frozenset(ENVIRONMENT.globals)


def _compile(source: str, where: str, prompt: str) -> Template:
    try:
        return ENVIRONMENT.from_string(source)
    except TemplateSyntaxError as exc:
        raise InvalidRequest(
            f"Template of prompt {prompt} does not compile ({where}, line {exc.lineno}): {exc.message}",
            param="template",
        ) from None


def used_variables(source: str, where: str, prompt: str) -> set[str]:
    """The variables ``source`` reads from its context (loop and ``set`` names excluded)."""
    try:
        ast = ENVIRONMENT.parse(source)
    except TemplateSyntaxError as exc:
        raise InvalidRequest(
            f"Template of prompt {prompt} does not compile ({where}, line {exc.lineno}): {exc.message}",
            param="template",
        ) from None
    return set(meta.find_undeclared_variables(ast)) - _GLOBALS


def validate_template(
    prompt_type: PromptType, template: object, declared: Sequence[str], prompt: str
) -> str | list[JSONObject]:
    """``template`` checked (shape, syntax, only declared variables used) and normalised.
    ``prompt`` names the prompt in error messages."""
    pieces: list[tuple[str, str]] = []
    normalised: str | list[JSONObject]
    if prompt_type == "text":
        if not isinstance(template, str):
            raise InvalidRequest(
                f"A text prompt's template is a string; prompt {prompt} got {_kind(template)}.",
                param="template",
            )
        pieces.append(("template", template))
        normalised = template
    else:
        normalised = _validate_messages(template, prompt, pieces)
    names = set(declared)
    for where, source in pieces:
        unknown = sorted(used_variables(source, where, prompt) - names)
        if unknown:
            raise InvalidRequest(
                f"Template of prompt {prompt} uses undeclared variable '{unknown[0]}' ({where}); "
                "declare it in 'variables'.",
                param="variables",
            )
    return normalised


def _validate_messages(template: object, prompt: str, pieces: list[tuple[str, str]]) -> list[JSONObject]:
    if not isinstance(template, list) or not template:
        raise InvalidRequest(
            f"A chat prompt's template is a non-empty list of messages; prompt {prompt} got "
            f"{_kind(template)}.",
            param="template",
        )
    messages: list[JSONObject] = []
    placeholders = 0
    for i, message in enumerate(template):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where} of prompt {prompt} must be an object.", param="template")
        unknown = sorted(set(message) - _MESSAGE_KEYS)
        if unknown:
            raise InvalidRequest(
                f"{where} of prompt {prompt} has unknown field '{unknown[0]}' (fields: role, content, name).",
                param="template",
            )
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise InvalidRequest(f"{where} of prompt {prompt} needs a 'role'.", param="template")
        content = message.get("content")
        name = message.get("name")
        if name is not None and not isinstance(name, str):
            raise InvalidRequest(f"{where}.name of prompt {prompt} must be a string.", param="template")
        if role == PLACEHOLDER_ROLE:
            placeholders += 1
            if placeholders > 1:
                raise InvalidRequest(
                    f"Prompt {prompt} has more than one history placeholder message.", param="template"
                )
            if content is not None and not isinstance(content, str):
                raise InvalidRequest(
                    f"{where}.content of prompt {prompt} must be a string.", param="template"
                )
            messages.append({"role": role, "content": content if content is not None else "{{ history }}"})
            continue
        if not isinstance(content, str):
            raise InvalidRequest(
                f"{where}.content of prompt {prompt} must be a string template.", param="template"
            )
        pieces.append((f"{where}.content", content))
        messages.append(dict(message))
    if placeholders == len(messages):
        raise InvalidRequest(f"Prompt {prompt} has no message besides the placeholder.", param="template")
    return messages


def _kind(value: object) -> str:
    return "null" if value is None else f"a {type_name(value)}"


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """A rendered version: ``text`` for a text prompt, ``messages`` for a chat prompt
    (without the placeholder; ``history_at`` is where it stood)."""

    text: str | None
    messages: tuple[JSONObject, ...]
    history_at: int | None

    def chat_messages(self, history: Sequence[Any] = ()) -> list[JSONObject]:
        """The messages of a chat request: the caller's ``history`` where the placeholder
        stood, else after the template's messages. A text prompt is one user message."""
        if self.text is not None:
            return [{"role": "user", "content": self.text}, *history]
        at = len(self.messages) if self.history_at is None else self.history_at
        return [*self.messages[:at], *history, *self.messages[at:]]


@dataclass(frozen=True, slots=True)
class _Part:
    role: str
    template: Template
    name: str | None


class CompiledTemplate:
    """A version's template, compiled once (rendering then costs microseconds)."""

    __slots__ = ("_history_at", "_parts", "_prompt", "_text")

    def __init__(self, prompt_type: PromptType, template: str | list[JSONObject], prompt: str) -> None:
        self._prompt = prompt
        self._text: Template | None = None
        self._parts: tuple[_Part, ...] = ()
        self._history_at: int | None = None
        if prompt_type == "text":
            assert isinstance(template, str)
            self._text = _compile(template, "template", prompt)
            return
        assert isinstance(template, list)
        parts: list[_Part] = []
        for i, message in enumerate(template):
            if message["role"] == PLACEHOLDER_ROLE:
                self._history_at = len(parts)
                continue
            where = f"messages[{i}].content"
            parts.append(
                _Part(message["role"], _compile(message["content"], where, prompt), message.get("name"))
            )
        self._parts = tuple(parts)

    def render(self, values: Mapping[str, Any]) -> RenderedPrompt:
        if self._text is not None:
            return RenderedPrompt(self._render(self._text, values), (), None)
        messages: list[JSONObject] = []
        for part in self._parts:
            message: JSONObject = {"role": part.role, "content": self._render(part.template, values)}
            if part.name is not None:
                message["name"] = part.name
            messages.append(message)
        return RenderedPrompt(None, tuple(messages), self._history_at)

    def _render(self, template: Template, values: Mapping[str, Any]) -> str:
        try:
            text = template.render(values)
        except SecurityError as exc:
            raise InvalidRequest(
                f"Prompt {self._prompt} was refused by the template sandbox: {exc}"
            ) from None
        except TemplateError as exc:
            raise InvalidRequest(f"Prompt {self._prompt} failed to render: {exc.message or exc}") from None
        except Exception as exc:  # an expression failing on the given values: 1 / 0, "a" + 1
            raise InvalidRequest(
                f"Prompt {self._prompt} failed to render: {type(exc).__name__}: {exc}"
            ) from None
        if len(text) > MAX_RENDERED_CHARS:
            raise InvalidRequest(
                f"Prompt {self._prompt} rendered to more than {MAX_RENDERED_CHARS} characters."
            )
        return text
