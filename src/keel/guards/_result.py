"""What a scan finds: spans of text, a verdict, a score and a reason.

A result never holds the text it found (only offsets into the text that was scanned),
so it can be logged, returned by an API or shown in a CLI without leaking the secret
it is about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

# "block": the scanner found a violation (the policy decides whether that blocks,
# redacts or flags); "flag": suspicious but under the scanner's threshold.
Verdict = Literal["pass", "flag", "block"]
Stage = Literal["input", "output"]


@dataclass(frozen=True, slots=True)
class Span:
    """``text[start:end]`` is an ``entity`` (``EMAIL``, ``API_KEY`` ...); ``kind`` says
    more where it helps (the provider of a key, the card brand, the rule that fired)."""

    entity: str
    start: int
    end: int
    score: float = 1.0
    kind: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"entity": self.entity, "start": self.start, "end": self.end}
        if self.score != 1.0:
            out["score"] = round(self.score, 4)
        if self.kind is not None:
            out["kind"] = self.kind
        return out


@dataclass(frozen=True, slots=True)
class GuardResult:
    """One scanner's verdict on one text. ``score`` is in 0..1 (1: certain violation);
    ``reason`` is safe to show (entity types and rule names, never found values)."""

    scanner: str
    verdict: Verdict
    score: float = 0.0
    spans: tuple[Span, ...] = ()
    reason: str = ""
    # Which text of a request or response it is about (``messages[1].content``); "" for one text.
    where: str = ""

    @property
    def violation(self) -> bool:
        return self.verdict == "block"

    def to_dict(self) -> dict[str, object]:
        return {
            "scanner": self.scanner,
            "verdict": self.verdict,
            "score": round(self.score, 4),
            "spans": [span.to_dict() for span in self.spans],
            "reason": self.reason,
            **({"where": self.where} if self.where else {}),
        }


@dataclass(frozen=True, slots=True)
class ScanContext:
    """What a scan may know besides the text: the stage, and for output scans the
    canary token planted in the system prompt and the system prompt itself."""

    stage: Stage = "input"
    canary: str | None = None
    system_prompt: str | None = None


NO_CONTEXT = ScanContext()


class Scanner(Protocol):
    """What a ``@guard`` factory returns.

    ``threaded``: the scan is CPU-heavy (a model); async callers run it in a thread.
    ``whole_text``: the scan only makes sense on a complete text (JSON validity): a
    streamed output is scanned by it once, at the end.
    """

    threaded: bool
    whole_text: bool

    def scan(self, text: str, context: ScanContext = NO_CONTEXT) -> GuardResult: ...


class RuleScanner:
    """Base for scanners that are plain rules: cheap, run inline, work on fragments."""

    threaded: bool = False
    whole_text: bool = False


def verdict_for(score: float, threshold: float, flag_threshold: float | None = None) -> Verdict:
    if score >= threshold:
        return "block"
    if flag_threshold is not None and score >= flag_threshold:
        return "flag"
    return "pass"


def spans_result(scanner: str, spans: list[Span], what: str = "found") -> GuardResult:
    """The result of a scanner whose every span is a violation."""
    if not spans:
        return GuardResult(scanner, "pass")
    spans.sort(key=lambda s: (s.start, -s.end))
    entities = sorted({s.entity for s in spans})
    return GuardResult(
        scanner,
        "block",
        max(s.score for s in spans),
        tuple(spans),
        f"{what} {', '.join(entities)} ({len(spans)})",
    )
