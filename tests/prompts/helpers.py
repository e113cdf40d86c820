"""Build prompt versions without a store, and a catalog double for expansion tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from keel.core import NotFound
from keel.prompts import PromptType, PromptVersion, VersionContent


def make_version(
    template: Any,
    *,
    variables: Any = None,
    model_config: Any = None,
    name: str = "p",
    version: int = 1,
    type: PromptType | None = None,
) -> PromptVersion:
    prompt_type: PromptType = type or ("chat" if isinstance(template, list) else "text")
    content = VersionContent.parse(
        prompt_type, template=template, variables=variables, model_config=model_config, prompt=name
    )
    return PromptVersion(
        prompt_name=name,
        prompt_type=prompt_type,
        version=version,
        template=content.template,
        variables=content.variables,
        model_config=content.model_config,
        commit_message="",
        author="test",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


class FakeCatalog:
    """``resolve`` over a dict: {name: {"versions": {n: PromptVersion}, "labels": {label: n}}}."""

    def __init__(self, *versions: PromptVersion, labels: dict[str, dict[str, int]] | None = None) -> None:
        self.versions = {(v.prompt_name, v.version): v for v in versions}
        self.labels = labels or {}

    def resolve(self, name: str, label: str | None = None, version: int | None = None) -> PromptVersion:
        if not any(key[0] == name for key in self.versions):
            raise NotFound(f"Unknown prompt '{name}'.")
        if version is None:
            number = self.labels.get(name, {}).get(label or "production")
            if number is None:
                raise NotFound(f"Prompt '{name}' has no label '{label or 'production'}'.")
            version = number
        found = self.versions.get((name, version))
        if found is None:
            raise NotFound(f"Prompt '{name}' has no version {version}.")
        return found
