"""Settings of the prompt registry (``prompts:`` in keel.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PromptSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Seconds between two checks for prompt versions/labels changed by another process:
    # the bound on how long a label move takes to reach every gateway.
    refresh_interval: float = Field(1.0, gt=0)
    # Protected labels move only to versions that passed an eval gate (``keel eval run``
    # with the version as the gate's candidate). ``eval_suites`` names, per prompt, the
    # suite whose gate counts (default: any suite's).
    require_eval_gate: bool = False
    eval_suites: dict[str, str] = Field(default_factory=dict)
