"""Output scanning of a streamed response on a sliding window.

Text is released ``holdback`` characters behind what has arrived, so that a value cut
across chunks (an email, a key) is scanned whole before any of it goes out; a span
still growing at the edge holds the release back to where it starts. Every feed scans
the unreleased text plus a tail of what was released (for context), with the policy's
fragment scanners (rules). Scanners that need the whole text (JSON, token limits) and
heavy ones (the classifier) run once, at ``finish``.

The delay is bounded: at most ``holdback`` characters (plus a span that is being cut)
stay unreleased. A block stops the stream: the caller ends it with an error event.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from keel.guards._policy import Policy, PolicyOutcome
from keel.guards._redact import Redactions, StreamRestorer, redact
from keel.guards._result import NO_CONTEXT, GuardResult, ScanContext, Span


@dataclass(frozen=True, slots=True)
class StreamStep:
    """What to send now (``text``, possibly empty), the new verdicts, and whether the
    stream must stop (``blocked``: send ``error`` instead of more text)."""

    text: str
    results: tuple[GuardResult, ...] = ()
    blocked: bool = False
    outcome: PolicyOutcome | None = None


class StreamGuard:
    def __init__(
        self,
        policy: Policy,
        context: ScanContext | None = None,
        request_redactions: Redactions | None = None,
        *,
        holdback: int | None = None,
        context_chars: int = 128,
    ) -> None:
        self.policy = policy
        self.context = dataclasses.replace(context or NO_CONTEXT, stage="output")
        self.holdback = policy.settings.stream_holdback if holdback is None else holdback
        self.context_chars = context_chars
        self.fragment = tuple(s for s in policy.output if not (s.scanner.whole_text or s.scanner.threaded))
        self.at_end = tuple(s for s in policy.output if s.scanner.whole_text or s.scanner.threaded)
        # Numbered after the request's placeholders (see Policy.guard_response).
        self.redactions: Redactions = dict(request_redactions or {})
        self._restorer = StreamRestorer(request_redactions) if policy.restore and request_redactions else None
        self._released = 0  # characters of the original text released so far
        self._text = ""  # everything that arrived (original)
        self._logged = ""  # everything released, redacted, before restoring
        # Spans already reported, per (scanner, entity), and those still to redact.
        self._seen: dict[tuple[str, str], list[Span]] = {}
        self._pending: dict[tuple[str, str, int], Span] = {}
        self.results: list[GuardResult] = []
        self.blocked: PolicyOutcome | None = None

    @property
    def full_text(self) -> str:
        """All text that arrived, unredacted."""
        return self._text

    @property
    def logged_text(self) -> str:
        """What was released, redacted and with nothing restored: what the request log
        may store for this response."""
        return self._logged

    def feed(self, piece: str) -> StreamStep:
        if self.blocked is not None:
            return StreamStep("", (), True, self.blocked)
        self._text += piece
        if len(self._text) - self._released <= self.holdback:
            return StreamStep("")
        return self._advance(len(self._text) - self.holdback, final=False)

    def finish(self) -> StreamStep:
        """Release the rest, after the end-of-text scanners (synchronous)."""
        if self.blocked is not None:
            return StreamStep("", (), True, self.blocked)
        step = self._advance(len(self._text), final=True)
        if step.blocked or not self.at_end:
            return step
        return self._merge(
            step,
            self.policy.scan_texts(
                [("", self._text)], stage="output", context=self.context, scanners=self.at_end
            ),
        )

    async def finish_async(self) -> StreamStep:
        """``finish`` with the heavy scanners in threads."""
        if self.blocked is not None:
            return StreamStep("", (), True, self.blocked)
        step = self._advance(len(self._text), final=True)
        if step.blocked or not self.at_end:
            return step
        outcome = await self.policy.scan_texts_async(
            [("", self._text)], stage="output", context=self.context, scanners=self.at_end
        )
        return self._merge(step, outcome)

    def _merge(self, step: StreamStep, outcome: PolicyOutcome) -> StreamStep:
        self.results += outcome.results
        if outcome.blocked:
            # The text of this step is held: a whole-text check failed at the very end.
            self.blocked = outcome
            return StreamStep("", step.results + outcome.results, True, outcome)
        return dataclasses.replace(step, results=step.results + outcome.results)

    def _advance(self, upto: int, *, final: bool) -> StreamStep:
        window_start = max(0, self._released - self.context_chars)
        new_results: list[GuardResult] = []
        if self.fragment:
            outcome = self.policy.scan_texts(
                [("", self._text[window_start:])],
                stage="output",
                context=self.context,
                scanners=self.fragment,
            )
            for entry, result in zip(self.fragment, outcome.results, strict=True):
                fresh = []
                for span in result.spans:
                    s = dataclasses.replace(
                        span, start=span.start + window_start, end=span.end + window_start
                    )
                    # Never cut through a span: hold the release back to where it starts.
                    if not final and s.start < upto < s.end:
                        upto = max(self._released, s.start)
                    if not final and s.end >= len(self._text):
                        continue  # it may still grow: judged once more text has come
                    key = (result.scanner, s.entity)
                    seen = self._seen.setdefault(key, [])
                    known = next((k for k in seen if k.start < s.end and s.start < k.end), None)
                    if known is None:
                        seen.append(s)
                        fresh.append(s)
                    else:
                        # Seen before (maybe cut by the window's start, or grown since).
                        s = dataclasses.replace(s, start=min(s.start, known.start), end=max(s.end, known.end))
                        seen[seen.index(known)] = s
                    if result.violation and entry.action == "redact" and s.end > self._released:
                        self._pending[(result.scanner, s.entity, s.start)] = s
                if result.verdict == "pass" or (result.spans and not fresh):
                    continue
                new_results.append(dataclasses.replace(result, spans=tuple(fresh)))
            self.results += new_results
            blocking = [r for r in new_results if r.scanner in outcome.blocked_by]
            if outcome.blocked and blocking:
                self.blocked = dataclasses.replace(outcome, results=tuple(new_results))
                return StreamStep("", tuple(new_results), True, self.blocked)
        step = self._release(upto, final)
        return dataclasses.replace(step, results=tuple(new_results))

    def _release(self, upto: int, final: bool) -> StreamStep:
        if upto <= self._released:
            tail = self._restorer.flush() if final and self._restorer is not None else ""
            return StreamStep(tail)
        start = self._released
        chunk = self._text[start:upto]
        local = [
            Span(s.entity, max(s.start, start) - start, min(s.end, upto) - start, s.score, s.kind)
            for s in self._pending.values()
            if s.end > start and s.start < upto
        ]
        if local:
            chunk, self.redactions = redact(chunk, local, self.redactions)
        self._pending = {k: s for k, s in self._pending.items() if s.end > upto}
        self._released = upto
        self._logged += chunk
        if self._restorer is not None:
            chunk = self._restorer.feed(chunk) + (self._restorer.flush() if final else "")
        return StreamStep(chunk)
