"""Settings of guardrail policies (``guards:`` in keel.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class GuardSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
