"""Generic scanners: banned substrings, banned topics (keyword lists), your own
regular expressions, and a limit on input tokens."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from keel.guards._registry import guard
from keel.guards._result import NO_CONTEXT, GuardResult, RuleScanner, ScanContext, Span, spans_result


def _alternation(phrases: Sequence[str], *, whole_words: bool) -> str:
    parts = []
    for phrase in sorted({p for p in phrases if p}, key=len, reverse=True):
        escaped = re.escape(phrase).replace(r"\ ", r"\s+")
        if whole_words:
            escaped = (r"(?<!\w)" if phrase[0].isalnum() or phrase[0] == "_" else "") + escaped
            escaped += r"(?!\w)" if phrase[-1].isalnum() or phrase[-1] == "_" else ""
        parts.append(escaped)
    return "|".join(parts)


class PatternScanner(RuleScanner):
    """Every match of one compiled pattern is a span of ``entity``."""

    def __init__(self, label: str, entity: str, pattern: re.Pattern[str], kinds: Mapping[str, str]) -> None:
        self.label = label
        self.entity = entity
        self.pattern = pattern
        self.kinds = kinds

    def scan(self, text: str, context: ScanContext = NO_CONTEXT) -> GuardResult:
        spans = [
            Span(self.entity, m.start(), m.end(), kind=self.kinds.get(m.lastgroup or ""))
            for m in self.pattern.finditer(text)
            if m.end() > m.start()
        ]
        return spans_result(self.label, spans)


@guard("banned_substrings")
def banned_substrings(
    substrings: Sequence[str],
    case_sensitive: bool = False,
    whole_words: bool = True,
    entity: str = "BANNED",
) -> PatternScanner:
    """Any of ``substrings``; ``whole_words`` keeps ``ass`` from matching ``class``."""
    if not [s for s in substrings if s]:
        raise ValueError("banned_substrings needs at least one non-empty substring")
    flags = 0 if case_sensitive else re.IGNORECASE
    pattern = re.compile(_alternation(substrings, whole_words=whole_words), flags)
    return PatternScanner("banned_substrings", _entity_name(entity), pattern, {})


@guard("banned_topics")
def banned_topics(topics: Mapping[str, Sequence[str]], entity: str = "TOPIC") -> PatternScanner:
    """Topics named by keyword lists (``{"weapons": ["rifle", "ammunition"]}``); a span's
    ``kind`` is the topic."""
    groups = []
    kinds = {}
    for i, (topic, keywords) in enumerate(topics.items()):
        if not [k for k in keywords if k]:
            raise ValueError(f"topic {topic!r} has no keywords")
        groups.append(f"(?P<t{i}>{_alternation(keywords, whole_words=True)})")
        kinds[f"t{i}"] = topic
    if not groups:
        raise ValueError("banned_topics needs at least one topic")
    return PatternScanner("banned_topics", _entity_name(entity), re.compile("|".join(groups), re.I), kinds)


@guard("regex")
def regex(
    patterns: Sequence[str] | Mapping[str, str],
    ignore_case: bool = False,
    entity: str = "REGEX",
) -> PatternScanner:
    """Your own patterns (Python ``re`` syntax). A mapping names each pattern's entity
    (``{"TICKET": "TCK-\\\\d+"}``), so redaction writes ``<TICKET_1>``."""
    if not patterns:
        raise ValueError("regex needs at least one pattern")
    groups = []
    kinds = {}
    sources = patterns.items() if isinstance(patterns, Mapping) else [(entity, p) for p in patterns]
    for i, (name, source) in enumerate(sources):
        try:
            compiled = re.compile(source)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {source!r}: {exc}") from None
        if compiled.match(""):
            raise ValueError(f"regular expression {source!r} matches the empty string")
        # Named groups in user patterns would clash once combined: make them plain groups.
        plain = re.sub(r"\(\?P<\w+>", "(", source)
        plain = re.sub(r"\(\?P=\w+\)", "", plain) if "(?P=" in plain else plain
        groups.append(f"(?P<r{i}>{plain})")
        kinds[f"r{i}"] = _entity_name(name)
    combined = re.compile("|".join(groups), re.IGNORECASE if ignore_case else 0)
    return _MultiEntityScanner("regex", combined, kinds)


class _MultiEntityScanner(PatternScanner):
    """A pattern whose named groups each stand for an entity."""

    def __init__(self, label: str, pattern: re.Pattern[str], entities: Mapping[str, str]) -> None:
        super().__init__(label, "REGEX", pattern, {})
        self.entities = entities

    def scan(self, text: str, context: ScanContext = NO_CONTEXT) -> GuardResult:
        spans = [
            Span(self.entities.get(m.lastgroup or "", self.entity), m.start(), m.end())
            for m in self.pattern.finditer(text)
            if m.end() > m.start()
        ]
        return spans_result(self.label, spans)


def _entity_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Z0-9_]", "_", name.upper()).strip("_")
    if not cleaned or not cleaned[0].isalpha():
        raise ValueError(f"entity name {name!r} must start with a letter (it names placeholders)")
    return cleaned


# --- token limit -----------------------------------------------------------------

_PIECES = re.compile(r"[A-Za-z]+|\d{1,3}|[^\sA-Za-z\d]|\s+")


def estimate_tokens(text: str) -> int:
    """An offline estimate of BPE tokens (cl100k-like): a word of up to 6 letters is one
    token, longer words one per 4 letters, numbers one per 3 digits, punctuation one
    each; whitespace joins the next token. Over-counts English by a few percent."""
    count = 0
    for piece in _PIECES.findall(text):
        first = piece[0]
        if first.isspace():
            continue
        if first.isalpha() and first.isascii():
            count += 1 if len(piece) <= 6 else math.ceil(len(piece) / 4)
        else:
            count += 1
    return count


@lru_cache(maxsize=8)
def _tokenizer_counter(path: str) -> Callable[[str], int]:
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise ValueError("a tokenizer file needs the tokenizers package: pip install 'keel[local]'") from exc
    try:
        tokenizer: Any = Tokenizer.from_file(path)
    except Exception as exc:  # the library raises a bare Exception for a bad file
        raise ValueError(f"cannot load tokenizer {path!r}: {exc}") from None

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count


class MaxTokensScanner(RuleScanner):
    whole_text = True

    def __init__(self, limit: int, counter: Callable[[str], int]) -> None:
        self.limit = limit
        self.counter = counter

    def scan(self, text: str, context: ScanContext = NO_CONTEXT) -> GuardResult:
        # Every token covers at least one byte: a text with no more bytes than the limit
        # cannot be over it, and is not counted.
        if len(text) <= self.limit and len(text.encode("utf-8")) <= self.limit:
            return GuardResult("max_tokens", "pass")
        tokens = self.counter(text)
        if tokens <= self.limit:
            return GuardResult("max_tokens", "pass", tokens / self.limit / 2)
        return GuardResult("max_tokens", "block", 1.0, (), f"{tokens} tokens, over the limit of {self.limit}")


@guard("max_tokens")
def max_tokens(limit: int, tokenizer: str | None = None) -> MaxTokensScanner:
    """At most ``limit`` tokens, counted with ``tokenizer`` (a ``tokenizer.json`` path)
    or else estimated offline (``estimate_tokens``)."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    counter = _tokenizer_counter(tokenizer) if tokenizer else estimate_tokens
    return MaxTokensScanner(limit, counter)
