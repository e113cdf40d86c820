"""A policy: the scanners that run on input and on output, and what a violation does.

    block   the request (or response) is refused: ``GuardViolation`` naming the policy
            and the scanners, never the value found
    redact  each span found becomes a typed placeholder (``<EMAIL_1>``); with
            ``restore`` the response gets the originals back
    flag    allowed as it is; the verdicts are recorded

A scanner's own action wins over the policy's. A violation that has no spans (the
injection classifier, a language or JSON check) cannot be redacted: under ``redact``
it blocks, so that redaction never lets through what it cannot cut out.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from keel.core import ConfigError, ConfigProblem, GuardSettings, GuardViolation
from keel.core._settings_guards import GuardAction, PolicySettings, ScannerSettings
from keel.guards import _bodies
from keel.guards._redact import Redactions, redact, restore
from keel.guards._registry import build_scanner
from keel.guards._result import NO_CONTEXT, GuardResult, ScanContext, Scanner, Span, Stage

if TYPE_CHECKING:
    from keel.guards._stream import StreamGuard

Decision = Literal["allow", "flag", "redact", "block"]
_RANK: dict[Decision, int] = {"allow": 0, "flag": 1, "redact": 2, "block": 3}


@dataclass(frozen=True, slots=True)
class PolicyScanner:
    """A built scanner in a policy, with the name and settings it was built from."""

    name: str
    label: str
    action: GuardAction
    settings: Mapping[str, Any]
    scanner: Scanner

    def scan(self, text: str, context: ScanContext, where: str = "") -> GuardResult:
        result = self.scanner.scan(text, context)
        if result.scanner != self.label or where:
            result = dataclasses.replace(result, scanner=self.label, where=where)
        return result

    def describe(self) -> dict[str, Any]:
        return {"scanner": self.name, "label": self.label, "action": self.action, **dict(self.settings)}


@dataclass(frozen=True)
class PolicyOutcome:
    """What a policy did with some texts: the decision, every scanner's verdict, the
    texts after redaction (in the order given) and the placeholders used.

    ``texts`` are what the policy passes on: redacted under ``redact``, unchanged under
    ``allow`` and ``flag``; under ``block`` nothing is passed on and ``texts`` have every
    violating span redacted, so that even a blocked request can be logged safely."""

    policy: str
    stage: Stage
    decision: Decision
    results: tuple[GuardResult, ...]
    texts: tuple[str, ...]
    redactions: Redactions = field(default_factory=dict)
    # Labels of the scanners whose violation decided a block.
    blocked_by: tuple[str, ...] = ()
    # For a body: the body with redactions applied and nothing restored, which is what
    # may be stored in the request log. None for plain texts.
    body: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def blocked(self) -> bool:
        return self.decision == "block"

    @property
    def text(self) -> str:
        """The one text scanned (after redaction)."""
        return self.texts[0] if self.texts else ""

    @property
    def violations(self) -> tuple[GuardResult, ...]:
        return tuple(r for r in self.results if r.violation)

    def error(self) -> GuardViolation:
        """The error a blocked request or response gets: policy and scanners, no values."""
        what = "request" if self.stage == "input" else "response"
        reasons = "; ".join(
            f"{r.scanner}: {r.reason}" if r.reason else r.scanner
            for r in self.violations
            if r.scanner in self.blocked_by
        )
        return GuardViolation(f"{what} blocked by guard policy {self.policy!r} ({reasons})")

    def to_dict(self) -> dict[str, Any]:
        """For the request log: verdicts and placeholder names, never redacted values."""
        return {
            "policy": self.policy,
            "stage": self.stage,
            "decision": self.decision,
            "results": [r.to_dict() for r in self.results if r.verdict != "pass"],
            "scanners": sorted({r.scanner for r in self.results}),
            "redacted": sorted(self.redactions),
        }


class Policy:
    """A named policy, built once from its settings and used for every request."""

    def __init__(
        self,
        name: str,
        settings: PolicySettings,
        input_scanners: Sequence[PolicyScanner],
        output_scanners: Sequence[PolicyScanner],
    ) -> None:
        self.name = name
        self.settings = settings
        self.input = tuple(input_scanners)
        self.output = tuple(output_scanners)

    @property
    def restore(self) -> bool:
        return self.settings.restore

    def scanners(self, stage: Stage) -> tuple[PolicyScanner, ...]:
        return self.input if stage == "input" else self.output

    def warm_up(self) -> None:
        """Load what scanners load lazily (a model), so the first request does not wait."""
        for entry in (*self.input, *self.output):
            warm = getattr(entry.scanner, "warm_up", None)
            if callable(warm):
                warm()

    # --- texts -------------------------------------------------------------------

    def scan(
        self,
        text: str,
        *,
        stage: Stage = "input",
        context: ScanContext | None = None,
        redactions: Redactions | None = None,
    ) -> PolicyOutcome:
        """Apply the policy to one text."""
        return self.scan_texts([("", text)], stage=stage, context=context, redactions=redactions)

    async def scan_async(
        self,
        text: str,
        *,
        stage: Stage = "input",
        context: ScanContext | None = None,
        redactions: Redactions | None = None,
    ) -> PolicyOutcome:
        return await self.scan_texts_async([("", text)], stage=stage, context=context, redactions=redactions)

    def scan_texts(
        self,
        items: Sequence[tuple[str, str]],
        *,
        stage: Stage = "input",
        context: ScanContext | None = None,
        redactions: Redactions | None = None,
        scanners: Sequence[PolicyScanner] | None = None,
    ) -> PolicyOutcome:
        """Apply the policy to several texts at once (``(where, text)`` pairs): one
        decision, one placeholder mapping."""
        context = _staged(context, stage)
        chosen = self.scanners(stage) if scanners is None else scanners
        pairs = [(entry, entry.scan(text, context, where)) for where, text in items for entry in chosen]
        return self._decide(items, pairs, stage, redactions)

    async def scan_texts_async(
        self,
        items: Sequence[tuple[str, str]],
        *,
        stage: Stage = "input",
        context: ScanContext | None = None,
        redactions: Redactions | None = None,
        scanners: Sequence[PolicyScanner] | None = None,
    ) -> PolicyOutcome:
        """``scan_texts`` from async code: rule scanners run inline (microseconds), the
        heavy ones (``threaded``) in threads, concurrently."""
        context = _staged(context, stage)
        chosen = self.scanners(stage) if scanners is None else scanners
        pairs: list[tuple[PolicyScanner, GuardResult]] = []
        heavy = []
        for where, text in items:
            for entry in chosen:
                if entry.scanner.threaded:
                    heavy.append((entry, asyncio.to_thread(entry.scan, text, context, where)))
                else:
                    pairs.append((entry, entry.scan(text, context, where)))
        if heavy:
            results = await asyncio.gather(*(job for _, job in heavy))
            pairs += [(entry, result) for (entry, _), result in zip(heavy, results, strict=True)]
        return self._decide(items, pairs, stage, redactions)

    def _decide(
        self,
        items: Sequence[tuple[str, str]],
        pairs: Sequence[tuple[PolicyScanner, GuardResult]],
        stage: Stage,
        redactions: Redactions | None,
    ) -> PolicyOutcome:
        decision: Decision = "allow"
        blocked_by: list[str] = []
        to_redact: dict[str, list[Span]] = {}
        # Every violating span, redacted in what a block leaves behind for the log.
        violating: dict[str, list[Span]] = {}
        for entry, result in pairs:
            if result.verdict == "flag":
                decision = _max(decision, "flag")
            if not result.violation:
                continue
            violating.setdefault(result.where, []).extend(result.spans)
            action = entry.action
            if action == "redact" and not result.spans:
                action = "block"
            if action == "block":
                decision = "block"
                if result.scanner not in blocked_by:
                    blocked_by.append(result.scanner)
            elif action == "redact":
                decision = _max(decision, "redact")
                to_redact.setdefault(result.where, []).extend(result.spans)
            else:
                decision = _max(decision, "flag")
        mapping: Redactions = {} if redactions is None else redactions
        texts = []
        for where, text in items:
            spans = to_redact.get(where) if decision == "redact" else violating.get(where)
            if spans and decision in ("redact", "block"):
                text, mapping = redact(text, spans, mapping)
            texts.append(text)
        return PolicyOutcome(
            self.name,
            stage,
            decision,
            tuple(result for _, result in pairs),
            tuple(texts),
            mapping,
            tuple(blocked_by),
        )

    # --- OpenAI-format bodies ----------------------------------------------------------

    def guard_request(
        self, body: Mapping[str, Any], context: ScanContext | None = None
    ) -> tuple[dict[str, Any], PolicyOutcome]:
        """Input scanners over a chat/completion/embedding request body: the body to send
        on (redacted when the policy redacts; also ``outcome.body``, for the log) and the
        outcome. Raises nothing; check ``outcome.blocked`` and raise ``outcome.error()``."""
        found = _bodies.request_texts(body, self.settings.input_roles)
        outcome = self.scan_texts(
            [(_bodies.display(p), t) for p, t in found], stage="input", context=_with_system(body, context)
        )
        sent = _apply(body, found, outcome)
        return sent, dataclasses.replace(outcome, body=sent)

    async def guard_request_async(
        self, body: Mapping[str, Any], context: ScanContext | None = None
    ) -> tuple[dict[str, Any], PolicyOutcome]:
        found = _bodies.request_texts(body, self.settings.input_roles)
        outcome = await self.scan_texts_async(
            [(_bodies.display(p), t) for p, t in found], stage="input", context=_with_system(body, context)
        )
        sent = _apply(body, found, outcome)
        return sent, dataclasses.replace(outcome, body=sent)

    def guard_response(
        self,
        body: Mapping[str, Any],
        context: ScanContext | None = None,
        request_redactions: Redactions | None = None,
    ) -> tuple[dict[str, Any], PolicyOutcome]:
        """Output scanners over a non-streamed response body: the body for the client
        (redacted, then the request's placeholders put back when the policy restores)
        and the outcome, whose ``body`` is redacted and not restored (for the log)."""
        found = _bodies.response_texts(body)
        # Numbering continues after the request's placeholders: a value the model adds
        # must not get a placeholder that restoring would turn into the user's value.
        outcome = self.scan_texts(
            [(_bodies.display(p), t) for p, t in found],
            stage="output",
            context=context,
            redactions=dict(request_redactions or {}),
        )
        return self._finish_response(body, found, outcome, request_redactions)

    async def guard_response_async(
        self,
        body: Mapping[str, Any],
        context: ScanContext | None = None,
        request_redactions: Redactions | None = None,
    ) -> tuple[dict[str, Any], PolicyOutcome]:
        found = _bodies.response_texts(body)
        outcome = await self.scan_texts_async(
            [(_bodies.display(p), t) for p, t in found],
            stage="output",
            context=context,
            redactions=dict(request_redactions or {}),
        )
        return self._finish_response(body, found, outcome, request_redactions)

    def stream(
        self,
        context: ScanContext | None = None,
        request_redactions: Redactions | None = None,
        *,
        holdback: int | None = None,
    ) -> StreamGuard:
        """A guard for one streamed response: ``feed`` each text delta, send what it
        returns, ``finish`` (or ``finish_async``) at the end."""
        from keel.guards._stream import StreamGuard

        return StreamGuard(self, context, request_redactions, holdback=holdback)

    def _finish_response(
        self,
        body: Mapping[str, Any],
        found: list[tuple[_bodies.Path, str]],
        outcome: PolicyOutcome,
        request_redactions: Redactions | None,
    ) -> tuple[dict[str, Any], PolicyOutcome]:
        logged = _apply(body, found, outcome)
        texts = list(outcome.texts)
        if self.restore and request_redactions:
            texts = [restore(t, request_redactions) for t in texts]
        changed = [(p, new) for (p, old), new in zip(found, texts, strict=True) if new != old]
        client = _bodies.with_texts(body, changed) if changed else dict(body)
        return client, dataclasses.replace(outcome, body=logged)


def _apply(
    body: Mapping[str, Any], found: list[tuple[_bodies.Path, str]], outcome: PolicyOutcome
) -> dict[str, Any]:
    if outcome.decision not in ("redact", "block"):
        return dict(body)
    changed = [(p, new) for (p, old), new in zip(found, outcome.texts, strict=True) if new != old]
    return _bodies.with_texts(body, changed)


def _with_system(body: Mapping[str, Any], context: ScanContext | None) -> ScanContext:
    context = context or NO_CONTEXT
    if context.system_prompt is None:
        prompt = _bodies.system_prompt(body)
        if prompt is not None:
            context = dataclasses.replace(context, system_prompt=prompt)
    return context


def _staged(context: ScanContext | None, stage: Stage) -> ScanContext:
    context = context or NO_CONTEXT
    return context if context.stage == stage else dataclasses.replace(context, stage=stage)


def _max(a: Decision, b: Decision) -> Decision:
    return a if _RANK[a] >= _RANK[b] else b


# --- building -------------------------------------------------------------------------


def build_policy(name: str, settings: PolicySettings, *, location: str = "") -> Policy:
    """One policy from its settings; every problem in it is reported at once."""
    base = location or f"guards.policies.{name}"
    problems: list[ConfigProblem] = []
    built: dict[str, list[PolicyScanner]] = {"input": [], "output": []}
    for stage in ("input", "output"):
        entries = settings.input if stage == "input" else settings.output
        labels: set[str] = set()
        for i, entry in enumerate(entries):
            where = f"{base}.{stage}[{i}]"
            label = entry.label or entry.scanner
            if label in labels:
                problems.append(
                    ConfigProblem(where, f"scanner {label!r} appears twice in {stage}: give one a 'label'")
                )
                continue
            labels.add(label)
            try:
                scanner = build_scanner(entry.scanner, entry.options, location=where)
            except ConfigError as exc:
                problems += exc.problems
                continue
            action = entry.action or settings.action
            built[stage].append(PolicyScanner(entry.scanner, label, action, entry.options, scanner))
    if problems:
        raise ConfigError(problems)
    return Policy(name, settings, built["input"], built["output"])


BUILTIN_POLICY = PolicySettings(
    description="Keel's default: redact personal data and secrets, block injection and jailbreaks.",
    action="redact",
    restore=True,
    input=[ScannerSettings(scanner=name) for name in ("pii", "secrets", "injection")],
    output=[ScannerSettings(scanner=name) for name in ("pii", "secrets", "canary")],
)


def builtin_policy() -> Policy:
    """The policy ``keel guard scan`` uses when neither the command nor keel.yaml names one."""
    return build_policy("default", BUILTIN_POLICY)


def build_policies(settings: GuardSettings) -> dict[str, Policy]:
    """Every policy in ``guards:``, or a ``ConfigError`` listing every problem."""
    problems: list[ConfigProblem] = []
    policies: dict[str, Policy] = {}
    for name, policy_settings in settings.policies.items():
        try:
            policies[name] = build_policy(name, policy_settings)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return policies
