"""Rows of the prompt tables as ``PromptVersion`` objects."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Row

from keel.prompts._template import PromptType
from keel.prompts._variables import parse_variables
from keel.prompts._version import PromptVersion


def version_from_row(prompt: Row[Any], row: Row[Any]) -> PromptVersion:
    """``prompt`` is a ``prompts`` row, ``row`` a ``prompt_versions`` row of it."""
    return PromptVersion(
        prompt_name=prompt.name,
        prompt_type=cast("PromptType", prompt.type),
        version=row.version,
        template=row.template,
        variables=parse_variables(row.variables),
        model_config=dict(row.model_config or {}),
        commit_message=row.commit_message,
        author=row.author,
        created_at=row.created_at,
        team_id=prompt.team_id,
    )
