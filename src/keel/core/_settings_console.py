"""Settings of the web console (``console:`` in keel.yaml), served at ``/ui``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # Seconds a login lasts.
    session_ttl: int = Field(12 * 3600, gt=0)
    # Key that signs session cookies; None: a random one per process (logins do not
    # survive a restart nor cross replicas; set it when running several).
    secret: str | None = None
