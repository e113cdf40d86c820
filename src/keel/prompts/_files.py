"""Prompt files (prompts as code): one prompt per YAML or JSON file.

name: support-answer          # default: the file name without its extension
type: chat                    # default: chat if the template is a list, else text
messages:                     # or ``template:`` (a string, or a list of messages)
  - {role: system, content: "You answer questions about {{ product }}."}
  - {role: placeholder, content: "{{ history }}"}
  - {role: user, content: "{{ question }}"}
variables:
  product: {type: string, default: Keel}
  question: string            # a bare type: required
model_config: {model: gpt-4o-mini, temperature: 0.2}
commit_message: Shorter answers
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from keel.core import InvalidRequest, JSONObject
from keel.prompts._version import PromptVersion, check_prompt_name

SUFFIXES = (".yaml", ".yml", ".json")
_KEYS = frozenset({"name", "type", "template", "messages", "variables", "model_config", "commit_message"})


@dataclass(frozen=True, slots=True)
class PromptFile:
    path: Path
    name: str
    type: str
    template: object
    variables: object
    model_config: object
    commit_message: str


def prompt_files(path: Path) -> list[Path]:
    """``path`` itself, or the prompt files in the folder ``path`` (sorted, not recursive)."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
    if not path.exists():
        raise InvalidRequest(f"{path}: no such file or folder")
    return [path]


def read_prompt_file(path: Path) -> PromptFile:
    """Parse one file; every problem names the file."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"{path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidRequest(f"{path}: invalid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"{path}: a prompt file holds one mapping (name, template, ...)")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise InvalidRequest(f"{path}: unknown key '{unknown[0]}' (keys: {', '.join(sorted(_KEYS))})")
    if "template" in data and "messages" in data:
        raise InvalidRequest(f"{path}: give 'template' or 'messages', not both")
    template = data.get("template", data.get("messages"))
    if template is None:
        raise InvalidRequest(f"{path}: no 'template' (or 'messages')")
    name = data.get("name", path.stem)
    commit_message = data.get("commit_message") or ""
    try:
        check_prompt_name(name)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{path}: {exc.message}") from None
    if not isinstance(commit_message, str):
        raise InvalidRequest(f"{path}: 'commit_message' must be a string")
    return PromptFile(
        path=path,
        name=name,
        type=data.get("type", "chat" if isinstance(template, list) else "text"),
        template=template,
        variables=data.get("variables"),
        model_config=data.get("model_config"),
        commit_message=commit_message,
    )


def prompt_file_text(version: PromptVersion) -> str:
    """``version`` as a prompt file (YAML) that ``read_prompt_file`` reads back."""
    data: JSONObject = {"name": version.prompt_name, "type": version.prompt_type}
    data["messages" if version.prompt_type == "chat" else "template"] = version.template
    variables: dict[str, Any] = {}
    for variable in version.variables:
        spec = variable.to_json()
        del spec["name"]
        variables[variable.name] = spec
    if variables:
        data["variables"] = variables
    if version.model_config:
        data["model_config"] = version.model_config
    if version.commit_message:
        data["commit_message"] = version.commit_message
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
