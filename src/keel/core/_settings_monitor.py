"""Settings of production monitoring (``monitor:`` in keel.yaml)::

    monitor:
      enabled: true            # the server aggregates and tests on a schedule
      interval: 5m             # how often
      bucket: 5m               # pre-aggregation bucket (changing it needs a fresh start)
      lag: 2m                  # a bucket is final this long after it ends
      window: 1h               # the current window, sliding
      reference: 7d            # the reference: this long before the current window ...
      reference_start: 2026-01-01T00:00:00Z   # ... or a fixed period
      reference_end: 2026-01-08T00:00:00Z
      routes: []               # only these routes (empty: every route)
      body_sample: 100         # requests per bucket and group whose bodies are read
      embedding_sample: 32     # of those, how many are embedded
      embedder: local          # local (all-minilm-l6-v2), hashing, or none
      min_samples: 30          # fewer observations in a window: not tested
      signals:
        latency_ms: {detector: ks, alpha: 0.01}
        output_embedding: {detector: mmd, permutations: 500}
        cache_status: {enabled: false}

A signal's keys other than ``enabled``, ``detector`` and ``min_samples`` are settings of
its detector, checked against the detector's factory (``monitor.signals.latency_ms``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from keel.core._settings_alerts import Duration


class SignalMonitorSettings(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    enabled: bool = True
    # None: the signal's own choice, else the default by data kind and sample size.
    detector: str | None = None
    min_samples: int | None = Field(None, ge=1)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class MonitorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    interval: Duration = Field(300.0, gt=0)
    bucket: Duration = Field(300.0, ge=60, le=86400)
    lag: Duration = Field(120.0, ge=0)
    window: Duration = Field(3600.0, gt=0)
    reference: Duration = Field(7 * 86400.0, gt=0)
    reference_start: datetime | None = None
    reference_end: datetime | None = None
    # How far back the very first aggregation reaches into an existing request log.
    history: Duration = Field(8 * 86400.0, gt=0)
    routes: list[str] = Field(default_factory=list)
    body_sample: int = Field(100, ge=0, le=100_000)
    embedding_sample: int = Field(32, ge=0, le=10_000)
    embedder: Literal["local", "hashing", "none"] = "local"
    # keel.core.DEMO_EMBEDDING_MODEL (not imported: _settings imports this module).
    embedding_model: str = "all-minilm-l6-v2"
    min_samples: int = Field(30, ge=1)
    # Vectors per window side the embedding tests see (a weighted sample of the buckets').
    max_embeddings: int = Field(2000, ge=10)
    signals: dict[str, SignalMonitorSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fixed_reference(self) -> MonitorSettings:
        if (self.reference_start is None) != (self.reference_end is None):
            raise ValueError("reference_start and reference_end go together")
        if (
            self.reference_start is not None
            and self.reference_end is not None
            and self.reference_end <= self.reference_start
        ):
            raise ValueError("reference_end must be after reference_start")
        if self.bucket % 60:
            raise ValueError("bucket must be a whole number of minutes")
        return self
