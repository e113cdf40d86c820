"""Settings of guardrail policies (``guards:`` in keel.yaml).

A policy names the scanners that run on a request's input and on the model's output,
each with its own settings, and what a violation does::

    guards:
      default_policy: standard        # for routes, keys and teams that name none
      policies:
        standard:
          action: redact              # block | redact | flag (default for its scanners)
          restore: true               # put redacted values back into the response
          input:
            - pii                     # a scanner with its defaults
            - scanner: secrets
              action: block           # this scanner blocks instead
            - scanner: injection
              threshold: 0.7          # anything else is the scanner's own setting
          output:
            - scanner: urls
              allow: [example.com]

A scanner's own settings are checked against its factory when the policies are built
(``keel.guards.build_policies``), with locations such as
``guards.policies.standard.input[2].threshold``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

GuardAction = Literal["block", "redact", "flag"]


class ScannerSettings(BaseModel):
    """One scanner in a policy: ``scanner`` (its registered name), an optional
    ``action`` and ``label`` (the name its verdicts carry), and its own settings as
    further keys."""

    model_config = ConfigDict(extra="allow", frozen=True)

    scanner: str = Field(min_length=1)
    action: GuardAction | None = None
    label: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # ``- pii`` is ``- scanner: pii``.
        return {"scanner": value} if isinstance(value, str) else value

    @property
    def options(self) -> dict[str, Any]:
        """The scanner's own settings (every key other than scanner/action/label)."""
        return dict(self.model_extra or {})


class PolicySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = None
    action: GuardAction = "block"
    # After ``redact`` on input: put the original values back where the response
    # repeats a placeholder.
    restore: bool = False
    input: list[ScannerSettings] = Field(default_factory=list)
    output: list[ScannerSettings] = Field(default_factory=list)
    # Message roles whose content input scanners read (the system prompt is the operator's).
    input_roles: list[str] = Field(default_factory=lambda: ["user", "tool", "function"])
    # Streamed output is released this many characters behind what has arrived, so that
    # a value split across chunks is seen whole before any of it is sent.
    stream_holdback: int = Field(256, ge=0, le=65536)


class GuardSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    policies: dict[str, PolicySettings] = Field(default_factory=dict)
    default_policy: str | None = None

    @model_validator(mode="after")
    def _default_exists(self) -> GuardSettings:
        if self.default_policy is not None and self.default_policy not in self.policies:
            known = ", ".join(sorted(self.policies)) or "none"
            raise ValueError(f"default_policy {self.default_policy!r} is not a policy (known: {known})")
        return self
