"""Turn a request that names a prompt into the request the provider gets.

A request names a prompt in one of two ways:

- the ``prompt`` field, an object: ``{"name": "support-answer", "label": "production",
  "version": 3, "variables": {...}}`` (``label`` or ``version``, or neither);
- the model alias ``"model": "prompt:support-answer@production"`` (or ``prompt:NAME#3``
  for a version, or ``prompt:NAME``); variables then come in ``"prompt": {"variables":
  {...}}``, an object that names no prompt itself.

Without a label or version, a prompt resolves to its ``production`` label: calling a
prompt by name gets what is deployed (``@latest`` asks for the newest version).

What the expansion does:

- chat: ``messages`` become the rendered template, with the caller's own ``messages``
  spliced in at the history placeholder, or after the template when it has none; a text
  prompt becomes one user message (the caller's messages follow it);
- completions: ``prompt`` becomes the rendered text (a chat prompt cannot serve it);
- every field of the version's model config that the request does not set itself is
  applied (``max_tokens`` counts as set when the request sets ``max_completion_tokens``);
  chat-only fields (``tools``, ``response_format`` ...) are not applied to completions;
- the model: with the ``prompt:`` alias, the version's ``model_config.model`` (an error
  if it has none); with the ``prompt`` field, the request's ``model`` if it sends one,
  else the version's;
- the ``prompt`` object is removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from keel.core import InvalidRequest, JSONObject
from keel.prompts._version import CHAT_ONLY_CONFIG, PromptRef, PromptVersion, parse_prompt_ref

MODEL_PREFIX = "prompt:"
_REF_KEYS = frozenset({"name", "label", "version", "variables"})
# Request fields that mean the same thing: a request setting one overrides the other.
_SAME_FIELD = {"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens"}

Mode = Literal["chat", "completion"]


class PromptSource(Protocol):
    """Where versions come from: ``PromptCatalog`` (or a test double)."""

    def resolve(self, name: str, label: str | None = None, version: int | None = None) -> PromptVersion: ...


@dataclass(frozen=True, slots=True)
class PromptExpansion:
    """The request to send on (a new dict; the caller's is not changed) and which
    version produced it, for the request log."""

    body: JSONObject
    prompt_name: str
    prompt_version: int
    label: str | None


def names_prompt(body: Mapping[str, Any]) -> bool:
    """Whether ``body`` names a prompt (the fast check ``expand_prompt_request`` makes)."""
    model = body.get("model")
    return isinstance(body.get("prompt"), dict) or (isinstance(model, str) and model.startswith(MODEL_PREFIX))


def expand_prompt_request(
    catalog: PromptSource, body: JSONObject, *, mode: Mode = "chat"
) -> PromptExpansion | None:
    """The expanded request, or None when ``body`` names no prompt. ``mode`` is the
    endpoint: ``chat`` (/v1/chat/completions) or ``completion`` (/v1/completions).
    Errors: InvalidRequest (bad reference, missing or mistyped variable, no model) or
    NotFound (unknown prompt, label or version)."""
    field = body.get("prompt")
    model = body.get("model")
    alias = isinstance(model, str) and model.startswith(MODEL_PREFIX)
    if not alias and not isinstance(field, dict):
        return None  # the hot path: a plain request
    ref, variables = _reference(body, field, model if alias else None, mode)
    version = catalog.resolve(ref.name, ref.label, ref.version)
    rendered = version.render(variables)
    expanded = {key: value for key, value in body.items() if key != "prompt"}
    if mode == "chat":
        history = body.get("messages")
        if history is None:
            history = []
        elif not isinstance(history, list):
            raise InvalidRequest("'messages' must be a list of messages.", param="messages")
        expanded["messages"] = rendered.chat_messages(history)
    else:
        if rendered.text is None:
            raise InvalidRequest(
                f"Prompt '{version.prompt_name}' is a chat prompt: call it through /v1/chat/completions.",
                param="prompt",
            )
        expanded["prompt"] = rendered.text
    for key, value in version.model_config.items():
        if key == "model" or (mode == "completion" and key in CHAT_ONLY_CONFIG):
            continue
        if body.get(key) is None and body.get(_SAME_FIELD.get(key, key)) is None:
            expanded[key] = value
    expanded["model"] = _model(version, None if alias else model)
    return PromptExpansion(expanded, version.prompt_name, version.version, ref.label)


def _reference(
    body: JSONObject, field: object, alias: str | None, mode: Mode
) -> tuple[PromptRef, dict[str, Any] | None]:
    if alias is not None:
        ref = parse_prompt_ref(alias[len(MODEL_PREFIX) :], param="model")
        if field is None:
            return ref, None
        if not isinstance(field, dict):
            if mode == "completion":
                raise InvalidRequest(
                    f"The model '{alias}' supplies the prompt text: drop the request's 'prompt'.",
                    param="prompt",
                )
            raise InvalidRequest("'prompt' must be an object.", param="prompt")
        named = sorted(set(field) & {"name", "label", "version"})
        if named:
            raise InvalidRequest(
                f"The model '{alias}' already names the prompt: drop 'prompt.{named[0]}'.", param="prompt"
            )
        _check_keys(field)
        return ref, _variables(field)
    assert isinstance(field, dict)
    _check_keys(field)
    name = field.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("'prompt.name' is required: the name of a prompt.", param="prompt.name")
    label = field.get("label")
    if label is not None and not isinstance(label, str):
        raise InvalidRequest("'prompt.label' must be a string.", param="prompt.label")
    version = field.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise InvalidRequest("'prompt.version' must be a positive integer.", param="prompt.version")
    if label is not None and version is not None:
        raise InvalidRequest("Give 'prompt.label' or 'prompt.version', not both.", param="prompt")
    return PromptRef(name, label, version), _variables(field)


def _check_keys(field: Mapping[str, Any]) -> None:
    unknown = sorted(set(field) - _REF_KEYS)
    if unknown:
        raise InvalidRequest(
            f"Unknown field 'prompt.{unknown[0]}' (fields: name, label, version, variables).",
            param=f"prompt.{unknown[0]}",
        )


def _variables(field: Mapping[str, Any]) -> dict[str, Any] | None:
    variables = field.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise InvalidRequest("'prompt.variables' must be an object.", param="prompt.variables")
    return variables


def _model(version: PromptVersion, requested: object) -> str:
    if isinstance(requested, str) and requested:
        return requested
    configured = version.model_config.get("model")
    if isinstance(configured, str) and configured:
        return configured
    raise InvalidRequest(
        f"Prompt '{version.ref}' has no model in its model config: send 'model' with the "
        "'prompt' field, or add a model to the prompt's config.",
        param="model",
    )
