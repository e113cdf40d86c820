"""What the gateway records about one call (one row of ``request_log``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class RequestRecord:
    """One client request as the gateway handled it.

    ``attempts`` counts upstream calls, retries and fallbacks included; ``deployment``
    is the one that produced the answer (or the last one tried). ``status`` is the HTTP
    status the client got (for a stream that broke after its first byte: 200 with
    ``error_type`` set). Latencies are milliseconds.
    """

    id: str
    created_at: datetime
    endpoint: str  # "chat.completions", "completions", "embeddings"
    requested_model: str
    status: int
    stream: bool = False
    route: str | None = None
    provider: str | None = None
    deployment: str | None = None
    attempts: int = 0
    error_type: str | None = None
    error_message: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None
    usage_source: str | None = None  # "reported", "counted" or None
    key_id: str | None = None
    team_id: str | None = None
    end_user: str | None = None
    request_body: str | None = None
    response_body: str | None = None
    body_truncated: bool = False
    extra: dict[str, object] = field(default_factory=dict)
    # Cost in nano-USD (1e-9) at the price in force when the request was made.
    cost_nanos: int | None = None
    cache_status: str | None = None  # "hit", "miss", "semantic_hit" or None (not cached)
    cost_saved_nanos: int | None = None  # what a cache hit would have cost
    prompt_name: str | None = None
    prompt_version: int | None = None
    # Guardrail verdicts: {"input": ..., "output": ...}, each a ``PolicyOutcome.to_dict()``
    # (policy, decision, verdicts, placeholder names; never a found value). None: no policy.
    guards: dict[str, object] | None = None
