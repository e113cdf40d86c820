"""Output scanners: JSON validity and schema conformance, refusals, system-prompt
leakage (canary tokens and verbatim runs of the system prompt), URLs outside an
allow-list."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from keel.guards import _jsonschema
from keel.guards._registry import guard
from keel.guards._result import (
    NO_CONTEXT,
    GuardResult,
    RuleScanner,
    ScanContext,
    Span,
    spans_result,
    verdict_for,
)

# --- JSON ------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n(?P<body>.*?)\n\s*```\s*$", re.S)


class JSONScanner(RuleScanner):
    whole_text = True

    def __init__(self, schema: Mapping[str, Any] | bool | None, allow_fence: bool) -> None:
        self.schema = schema
        self.allow_fence = allow_fence

    def scan(self, text: str, context: ScanContext = NO_CONTEXT) -> GuardResult:
        body = text
        fenced = _FENCE.match(text) if self.allow_fence else None
        if fenced:
            body = fenced.group("body")
        try:
            value = json.loads(body)
        except ValueError as exc:
            where = f"line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            return GuardResult("json", "block", 1.0, (), f"not valid JSON ({where})".replace(" ()", ""))
        if self.schema is None:
            return GuardResult("json", "pass")
        errors = _jsonschema.validate(value, self.schema)
        if errors:
            more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
            return GuardResult("json", "block", 1.0, (), "schema: " + "; ".join(errors[:3]) + more)
        return GuardResult("json", "pass")


@guard("json")
def json_output(schema: dict[str, Any] | bool | None = None, allow_fence: bool = True) -> JSONScanner:
    """The text is one JSON value (optionally in a ```json fence``` ), conforming to
    ``schema`` when given (a JSON Schema subset: keel.guards._jsonschema)."""
    if schema is not None:
        _jsonschema.check_schema(schema)
    return JSONScanner(schema, allow_fence)


# --- refusals --------------------------------------------------------------------

_REFUSAL = re.compile(
    r"(?i)\b(?:(?:i'?m|i\s+am)\s+(?:so\s+|very\s+|really\s+|truly\s+)?sorry,?\s+(?:but\s+)?(?:i|that's\s+not)"
    r"(?:\s+(?:really|just|simply))?\s*(?:can(?:'|no)?t|cannot|won'?t|will\s+not|am\s+(?:not\s+able|unable)|"
    r"'m\s+(?:not\s+able|unable)|must\s+decline|am\s+not\s+(?:allowed|permitted)|don'?t\s+(?:think\s+i\s+"
    r"(?:can|should)|feel\s+comfortable)|something\s+i\s+can)"
    r"|i\s+(?:apologi[sz]e|regret),?\s+(?:but\s+)?i\s+(?:can(?:'|no)?t|cannot|won'?t|am\s+unable|'m\s+unable)"
    r"|\bi\s+(?:can(?:'|no)?t|cannot|won'?t|will\s+not|am\s+(?:not\s+able|unable)|'m\s+(?:not\s+able|unable)|"
    r"am\s+not\s+(?:allowed|permitted)|must\s+(?:respectfully\s+)?decline|have\s+to\s+decline|"
    r"(?:do\s+not|don'?t)\s+feel\s+comfortable)\s+(?:to\s+)?(?:help(?:ing)?|assist(?:ing)?|provid(?:e|ing)|"
    r"comply(?:ing)?|fulfill?(?:ing)?|generat(?:e|ing)|creat(?:e|ing)|writ(?:e|ing)|answer(?:ing)?|"
    r"engag(?:e|ing)|support(?:ing)?|do(?:ing)?\s+that|share|sharing|give|giving|offer|participate|"
    r"continue|complete|produce|discuss|go\s+along|with\s+(?:that|this|your))"
    r"|as\s+an?\s+(?:ai|artificial\s+intelligence|language\s+model|ai\s+(?:language\s+)?model|ai\s+assistant|"
    r"large\s+language\s+model|llm)(?:\s+(?:developed|created|made|trained)\s+by\s+\w+)?,\s+i\s+"
    r"(?:can(?:'|no)?t|cannot|don'?t|do\s+not|am\s+not|'m\s+not|must|won'?t|have\s+no|lack)"
    r"|(?:against|violates?|goes\s+against|contrary\s+to)\s+(?:my|the|openai'?s?|anthropic'?s?)\s+"
    r"(?:\w+\s+)?(?:guidelines|programming|polic(?:y|ies)|principles|usage\s+polic(?:y|ies)|"
    r"ethical\s+guidelines|terms)"
    r"|(?:it(?:'s|\s+is)|that(?:'s|\s+is)|this\s+is)\s+not\s+(?:appropriate|something)\s+(?:for\s+me\s+to|"
    r"i\s+(?:can|will|am\s+able\s+to))"
    r"|\bi\s+(?:must|have\s+to|will\s+have\s+to)\s+(?:respectfully\s+|politely\s+)?decline\b"
    r"|i'?m\s+not\s+(?:able|going|comfortable|allowed|permitted)\s+to\s+(?:help|assist|provide|do\s+that|"
    r"share|create|write|generate|comply|give|engage|answer)"
    r"|unable\s+to\s+(?:help|assist|comply|fulfill?|provide)\s+(?:you\s+)?with\s+(?:that|this|your)\s+"
    r"(?:request|question|task)?)"
)


class RefusalScanner(RuleScanner):
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def scan(self, text: str, context: ScanContext = NO_CONTEXT) -> GuardResult:
        m = _REFUSAL.search(text)
        if m is None:
            return GuardResult("refusal", "pass")
        # A refusal is how an answer begins; the same words deep in a long answer are
        # more likely quoted or part of a story.
        score = 0.95 if m.start() < 200 else 0.6
        # No span: a refusal is recorded, flagged or blocked, never cut out of a text.
        return GuardResult(
            "refusal",
            verdict_for(score, self.threshold, 0.0),
            score,
            (),
            "refusal",
        )


@guard("refusal")
def refusal(threshold: float = 0.5) -> RefusalScanner:
    """The model refused ("I'm sorry, but I can't help with that")."""
    return RefusalScanner(threshold)


# --- system prompt leakage -------------------------------------------------------

_WORD = re.compile(r"\w+")


def new_canary() -> str:
    """A fresh canary token for one request's system prompt."""
    return f"kc-{secrets.token_hex(8)}"


def plant_canary(system_prompt: str, token: str) -> str:
    """``system_prompt`` with ``token`` planted where a verbatim leak would carry it."""
    return f"{system_prompt}\n\n[ref:{token}]" if system_prompt else f"[ref:{token}]"


class CanaryScanner(RuleScanner):
    def __init__(self, token: str | None, min_words: int) -> None:
        self.token = token
        self.min_words = min_words

    def scan(self, text: str, context: ScanContext = NO_CONTEXT) -> GuardResult:
        spans: list[Span] = []
        lowered = text.lower()
        for token in {t for t in (self.token, context.canary) if t}:
            start = lowered.find(token.lower())
            while start >= 0:
                spans.append(Span("CANARY", start, start + len(token), kind="canary"))
                start = lowered.find(token.lower(), start + 1)
        if context.system_prompt and self.min_words > 0:
            spans += _verbatim_runs(text, context.system_prompt, self.min_words)
        return spans_result("canary", spans, "system prompt leaked:")


def _verbatim_runs(text: str, source: str, min_words: int) -> list[Span]:
    """Runs of at least ``min_words`` consecutive words of ``source`` found in ``text``."""
    source_words = [w.lower() for w in _WORD.findall(source)]
    if len(source_words) < min_words:
        return []
    shingles = {tuple(source_words[i : i + min_words]) for i in range(len(source_words) - min_words + 1)}
    matches = list(_WORD.finditer(text))
    words = [m.group().lower() for m in matches]
    spans: list[Span] = []
    i = 0
    while i + min_words <= len(words):
        if tuple(words[i : i + min_words]) in shingles:
            j = i + min_words
            while j < len(words) and tuple(words[j - min_words + 1 : j + 1]) in shingles:
                j += 1
            spans.append(Span("SYSTEM_PROMPT", matches[i].start(), matches[j - 1].end(), kind="verbatim"))
            i = j
        else:
            i += 1
    return spans


@guard("canary")
def canary(token: str | None = None, min_words: int = 12) -> CanaryScanner:
    """System-prompt leakage: the canary token (``token``, or the one the gateway planted
    for this request) in the output, or ``min_words`` consecutive words of the system
    prompt (0 turns the verbatim check off)."""
    if token is not None and len(token) < 8:
        raise ValueError("a canary token needs at least 8 characters to be unambiguous")
    return CanaryScanner(token, min_words)


# --- URLs ------------------------------------------------------------------------

_URL = re.compile(
    r"(?i)\b(?:(?:https?|ftp|wss?)://[^\s<>\"'`)\]]+|www\.[a-z0-9-]+(?:\.[a-z0-9-]+)+[^\s<>\"'`)\]]*)"
)


class URLScanner(RuleScanner):
    def __init__(self, allow: Sequence[str], schemes: frozenset[str]) -> None:
        self.allow = tuple(d.lower().lstrip(".") for d in allow)
        self.schemes = schemes

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        host = (parts.hostname or "").rstrip(".")
        if parts.scheme.lower() not in self.schemes or not host:
            return False
        return any(host == d or host.endswith("." + d) for d in self.allow)

    def scan(self, text: str, context: ScanContext = NO_CONTEXT) -> GuardResult:
        if "://" not in text and "www." not in text.lower():
            return GuardResult("urls", "pass")
        spans = []
        for m in _URL.finditer(text):
            url = m.group().rstrip(".,;:!?")
            if not self.allowed(url):
                spans.append(Span("URL", m.start(), m.start() + len(url)))
        return spans_result("urls", spans, "URLs outside the allow-list:")


@guard("urls")
def urls(allow: Sequence[str] = (), schemes: Sequence[str] = ("http", "https")) -> URLScanner:
    """URLs whose host is not one of ``allow`` (a domain allows its subdomains) or
    whose scheme is not in ``schemes``."""
    return URLScanner(allow, frozenset(s.lower() for s in schemes))
