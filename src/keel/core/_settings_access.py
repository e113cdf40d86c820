"""Settings of access control (``access:`` in keel.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AccessSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # False: the data plane accepts calls without a key (a single-user setup or tests).
    enabled: bool = True
    # Seconds between two checks for keys/teams changed by another process.
    refresh_interval: float = Field(1.0, gt=0)
    # On a start with no active admin key (a fresh install), create one and print it once.
    create_first_admin: bool = True
