"""Settings of the prompt registry (``prompts:`` in keel.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PromptSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Seconds between two checks for prompt versions/labels changed by another process:
    # the bound on how long a label move takes to reach every gateway.
    refresh_interval: float = Field(1.0, gt=0)
