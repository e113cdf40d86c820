"""Wire types: what Keel reads of OpenAI-format requests, and the usage it records.

Requests are validated with these models but forwarded as the client's own JSON object,
so fields Keel does not know pass through untouched (``extra="allow"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JSONObject = dict[str, Any]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatMessage(_Open):
    role: str = Field(min_length=1)
    content: str | list[Any] | None = None


class StreamOptions(_Open):
    include_usage: bool | None = None


class ChatCompletionRequest(_Open):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1, le=128)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    tools: list[Any] | None = None
    response_format: dict[str, Any] | None = None


class CompletionRequest(_Open):
    model: str = Field(min_length=1)
    prompt: str | list[str] | list[int] | list[list[int]]
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1, le=128)
    max_tokens: int | None = Field(None, ge=1)


class EmbeddingRequest(_Open):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)


# reported: by the provider; counted: with the model's tokenizer; estimated: no
# tokenizer was available, so characters / 4 (rare: recorded so it can be found).
UsageSource = Literal["reported", "counted", "estimated"]


@dataclass(slots=True)
class Usage:
    """Token usage of one call. ``source`` says whether the provider reported it or
    Keel counted it (see ``UsageSource``)."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    source: UsageSource = "reported"

    @classmethod
    def from_openai(cls, usage: JSONObject | None) -> Usage | None:
        """Read an OpenAI ``usage`` object (chat, completions or embeddings)."""
        if not usage:
            return None
        details = usage.get("prompt_tokens_details") or {}
        return cls(
            input_tokens=int(usage.get("prompt_tokens") or 0),
            cached_input_tokens=int(details.get("cached_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            source="reported",
        )

    def to_openai(self) -> JSONObject:
        out: JSONObject = {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        if self.cached_input_tokens:
            out["prompt_tokens_details"] = {"cached_tokens": self.cached_input_tokens}
        return out
