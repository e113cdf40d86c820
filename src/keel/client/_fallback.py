"""Fallback versions: what the client serves for a prompt when Keel cannot be asked and
nothing is cached. Given as a ``PromptVersion``, a prompt file (``keel prompts pull``
writes them), or a mapping shaped like one or like the admin API's version JSON."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keel.core import InvalidRequest, JSONObject
from keel.prompts import (
    PromptFile,
    PromptRef,
    PromptType,
    PromptVersion,
    VersionContent,
    parse_prompt_ref,
    read_prompt_file,
)

# A fallback that names no version: it was never a version in the registry.
FALLBACK_VERSION = 0
FALLBACK_AUTHOR = "fallback"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Fallback = PromptVersion | PromptFile | Path | Mapping[str, Any]


def fallback_version(ref: PromptRef, given: Fallback) -> PromptVersion:
    """``given`` as the version to serve for ``ref`` (checked now: a broken fallback is an
    error when the client is made, not during an outage)."""
    if isinstance(given, PromptVersion):
        if given.prompt_name != ref.name:
            raise InvalidRequest(
                f"The fallback for '{ref}' is a version of prompt '{given.prompt_name}'.", param="fallbacks"
            )
        return given
    if isinstance(given, Path):
        given = read_prompt_file(given)
    if isinstance(given, PromptFile):
        data: JSONObject = {
            "name": given.name,
            "type": given.type,
            "template": given.template,
            "variables": given.variables,
            "model_config": given.model_config,
            "commit_message": given.commit_message,
        }
    elif isinstance(given, Mapping):
        data = dict(given)
    else:
        raise InvalidRequest(
            f"The fallback for '{ref}' must be a PromptVersion, a prompt file or a mapping, "
            f"not {type(given).__name__}.",
            param="fallbacks",
        )
    name = data.get("name", ref.name)
    if name != ref.name:
        raise InvalidRequest(f"The fallback for '{ref}' defines prompt '{name}'.", param="fallbacks")
    try:
        return version_from_json({**data, "name": ref.name}, default_version=FALLBACK_VERSION)
    except InvalidRequest as exc:
        raise InvalidRequest(
            f"The fallback for '{ref}' is invalid: {exc.message}", param="fallbacks"
        ) from None


def version_from_json(data: Mapping[str, Any], *, default_version: int | None = None) -> PromptVersion:
    """A version from the admin API's JSON (``PromptVersion.to_json``), validated as the
    registry validates it: the template compiles and uses only declared variables."""
    template = data.get("template", data.get("messages"))
    given_type = data.get("type") or ("chat" if isinstance(template, list) else "text")
    prompt_type: PromptType
    if given_type == "text":
        prompt_type = "text"
    elif given_type == "chat":
        prompt_type = "chat"
    else:
        raise InvalidRequest(f"Prompt type must be 'text' or 'chat', not {given_type!r}.", param="type")
    name = data.get("name")
    if not isinstance(name, str):
        raise InvalidRequest("A prompt version needs its prompt's 'name'.", param="name")
    version = data.get("version", default_version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidRequest(f"'version' must be a version number, not {version!r}.", param="version")
    content = VersionContent.parse(
        prompt_type,
        template=template,
        variables=data.get("variables"),
        model_config=data.get("model_config"),
        prompt=name,
    )
    created = data.get("created_at")
    try:
        created_at = datetime.fromisoformat(created) if isinstance(created, str) else _EPOCH
    except ValueError:
        raise InvalidRequest(f"'created_at' is not an ISO time: {created!r}.", param="created_at") from None
    return PromptVersion(
        prompt_name=name,
        prompt_type=prompt_type,
        version=version,
        template=content.template,
        variables=content.variables,
        model_config=content.model_config,
        commit_message=str(data.get("commit_message") or ""),
        author=str(data.get("author") or FALLBACK_AUTHOR),
        created_at=created_at,
    )


def fallback_key(text: str) -> PromptRef:
    """A key of ``fallbacks``: ``name`` (any label or version of it), ``name@label`` or
    ``name#version``."""
    return parse_prompt_ref(text, param="fallbacks")
