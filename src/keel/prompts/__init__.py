"""The prompt registry: versioned prompts, labels, templating, and the in-memory
catalog the gateway resolves prompts from.

- ``PromptRegistry``: the store (create, new versions, labels, rollback, diff).
- ``PromptCatalog``: every version in memory, refreshed on change (gateway).
- ``expand_prompt_request``: a request naming a prompt → the request to send on.
- ``prompt_stats``: per-version requests, errors, latency, tokens and cost.
"""

from keel.prompts._catalog import PromptCatalog
from keel.prompts._diff import diff_versions
from keel.prompts._expand import (
    MODEL_PREFIX,
    PromptExpansion,
    PromptSource,
    expand_prompt_request,
    names_prompt,
)
from keel.prompts._files import PromptFile, prompt_file_text, prompt_files, read_prompt_file
from keel.prompts._registry import Label, LabelGate, LabelMove, PromptRegistry, PromptSummary, PushOutcome
from keel.prompts._stats import VersionStats, prompt_stats
from keel.prompts._tables import prompt_label_history, prompt_labels, prompt_versions, prompts
from keel.prompts._template import PLACEHOLDER_ROLE, PromptType, RenderedPrompt
from keel.prompts._variables import VARIABLE_TYPES, Variable, VariableType
from keel.prompts._version import (
    LATEST,
    PRODUCTION,
    PROTECTED_BY_DEFAULT,
    PromptRef,
    PromptVersion,
    VersionContent,
    parse_prompt_ref,
)

__all__ = [
    "LATEST",
    "MODEL_PREFIX",
    "PLACEHOLDER_ROLE",
    "PRODUCTION",
    "PROTECTED_BY_DEFAULT",
    "VARIABLE_TYPES",
    "Label",
    "LabelGate",
    "LabelMove",
    "PromptCatalog",
    "PromptExpansion",
    "PromptFile",
    "PromptRef",
    "PromptRegistry",
    "PromptSource",
    "PromptSummary",
    "PromptType",
    "PromptVersion",
    "PushOutcome",
    "RenderedPrompt",
    "Variable",
    "VariableType",
    "VersionContent",
    "VersionStats",
    "diff_versions",
    "expand_prompt_request",
    "names_prompt",
    "parse_prompt_ref",
    "prompt_file_text",
    "prompt_files",
    "prompt_label_history",
    "prompt_labels",
    "prompt_stats",
    "prompt_versions",
    "prompts",
    "read_prompt_file",
]
