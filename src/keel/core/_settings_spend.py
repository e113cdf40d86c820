"""Settings of prices, budgets and rate limits (``spend:`` in keel.yaml)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TokenType = Literal["input", "cached_input", "output"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceSettings(_Strict):
    """A price override: USD per 1M tokens of one type, in force from ``effective_from``."""

    model: str
    token_type: TokenType
    usd_per_million: Decimal = Field(ge=0)
    effective_from: date | None = None


class SpendSettings(_Strict):
    prices: list[PriceSettings] = Field(default_factory=list)
    # Output tokens reserved for a request that sets no max_tokens.
    default_max_output_tokens: int = Field(4096, ge=1)
    # What the gateway does when Redis cannot be reached: refuse ("closed") or admit ("open").
    on_redis_error: Literal["closed", "open"] = "closed"
    # Prefix of every Redis key Keel's counters use (several deployments may share a Redis).
    redis_key_prefix: str = Field("keel:", min_length=1)
    # A gateway process writes its heartbeat this often; one silent for
    # ``instance_timeout_s`` is taken for dead and its open reservations are settled.
    heartbeat_interval_s: float = Field(5.0, gt=0)
    instance_timeout_s: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _timeout_outlasts_heartbeats(self) -> SpendSettings:
        if self.instance_timeout_s <= 2 * self.heartbeat_interval_s:
            raise ValueError("instance_timeout_s must be more than twice heartbeat_interval_s")
        return self


class RateLimitSettings(_Strict):
    """Requests and tokens per minute (None: no limit of that kind)."""

    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
