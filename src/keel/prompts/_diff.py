"""A readable unified diff of two versions: template, variables and model config."""

from __future__ import annotations

import difflib
import json

from keel.prompts._version import PromptVersion


def describe(version: PromptVersion) -> list[str]:
    """A version as lines of text, in the order a reviewer reads it."""
    lines = ["# template"]
    if isinstance(version.template, str):
        lines.extend(version.template.splitlines() or [""])
    else:
        for message in version.template:
            name = f" ({message['name']})" if message.get("name") else ""
            lines.append(f"[{message['role']}{name}]")
            lines.extend(str(message.get("content") or "").splitlines() or [""])
    lines.append("# variables")
    for variable in version.variables:
        spec = "required" if variable.required else f"default {json.dumps(variable.default)}"
        lines.append(f"{variable.name}: {variable.type}, {spec}")
    lines.append("# model config")
    for key in sorted(version.model_config):
        lines.append(f"{key}: {json.dumps(version.model_config[key], sort_keys=True)}")
    return lines


def diff_versions(a: PromptVersion, b: PromptVersion) -> str:
    """Empty when the two versions have the same content."""
    return "\n".join(
        difflib.unified_diff(describe(a), describe(b), fromfile=a.ref, tofile=b.ref, lineterm="")
    )
