"""Settings of model releases (``release:`` in keel.yaml): how gateways pick up
promotions, and when a canary is rolled back on its own::

    release:
      refresh_interval: 1s          # how often a gateway checks for promotions/rollbacks
      interval: 30s                 # how often the server compares every canary with production
      auto_rollback: true           # roll a canary back when a threshold below is crossed
      min_requests: 50              # canary requests before it can be called healthy
      alpha: 0.05                   # significance of each comparison (one-sided)
      max_error_rate_increase: 0.02 # canary error rate − production's, absolute
      max_latency_ratio: 1.5        # canary p95 latency / production's
      max_feedback_drop: 0.1        # production mean feedback score − canary's (0..1 scale)
      max_guard_rate_increase: 0.05 # canary guard trigger rate − production's, absolute

A threshold counts as crossed only when the difference is also significant at
``alpha`` (two-proportion z-test for rates, Mann–Whitney U for latencies and scores):
a canary is not rolled back for a difference that noise explains.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from keel.core._settings_alerts import Duration


class ReleaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    refresh_interval: Duration = Field(1.0, gt=0)
    interval: Duration = Field(30.0, gt=0)
    auto_rollback: bool = True
    min_requests: int = Field(50, ge=1)
    alpha: float = Field(0.05, gt=0, lt=1)
    max_error_rate_increase: float = Field(0.02, ge=0, le=1)
    max_latency_ratio: float = Field(1.5, ge=1)
    max_feedback_drop: float = Field(0.1, ge=0, le=1)
    max_guard_rate_increase: float = Field(0.05, ge=0, le=1)
