"""Redaction with typed placeholders (``<EMAIL_1>``) and restoring them.

The same value gets the same placeholder everywhere in one mapping (a conversation's
messages share one), so the model can still tell two people apart and a response that
repeats ``<EMAIL_1>`` can be given back with the original put in its place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from keel.guards._result import Span

# placeholder -> original text
Redactions = dict[str, str]

_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*?)_(\d+)>")
# Longest placeholder a stream may have cut in two (``<CREDIT_CARD_123>``).
MAX_PLACEHOLDER_LEN = 40


def redact(text: str, spans: Iterable[Span], mapping: Redactions | None = None) -> tuple[str, Redactions]:
    """``text`` with each span replaced by its placeholder, and the mapping (extended in
    place when given). Overlapping spans: the first (then the longest) wins."""
    mapping = {} if mapping is None else mapping
    by_value = {(_entity(p), v): p for p, v in mapping.items()}
    counters: dict[str, int] = {}
    for existing in mapping:
        m = _PLACEHOLDER.fullmatch(existing)
        if m:
            counters[m.group(1)] = max(counters.get(m.group(1), 0), int(m.group(2)))
    out: list[str] = []
    cursor = 0
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if span.start < cursor or span.end <= span.start:
            continue
        value = text[span.start : span.end]
        key = (span.entity, value)
        placeholder = by_value.get(key)
        if placeholder is None:
            counters[span.entity] = counters.get(span.entity, 0) + 1
            placeholder = f"<{span.entity}_{counters[span.entity]}>"
            mapping[placeholder] = value
            by_value[key] = placeholder
        out.append(text[cursor : span.start])
        out.append(placeholder)
        cursor = span.end
    out.append(text[cursor:])
    return "".join(out), mapping


def restore(text: str, mapping: Mapping[str, str]) -> str:
    """``text`` with every known placeholder replaced by its original; unknown ones stay."""
    if not mapping or "<" not in text:
        return text
    return _PLACEHOLDER.sub(lambda m: mapping.get(m.group(), m.group()), text)


def _entity(placeholder: str) -> str:
    m = _PLACEHOLDER.fullmatch(placeholder)
    return m.group(1) if m else placeholder


class StreamRestorer:
    """``restore`` for text that arrives in pieces: a placeholder cut between two
    pieces is held back until it is complete (at most ``MAX_PLACEHOLDER_LEN`` chars)."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._mapping = mapping
        self._pending = ""

    def feed(self, piece: str) -> str:
        text = self._pending + piece
        cut = text.rfind("<")
        if cut >= 0 and len(text) - cut < MAX_PLACEHOLDER_LEN and re.fullmatch(r"<[A-Z0-9_]*", text[cut:]):
            self._pending = text[cut:]
            return restore(text[:cut], self._mapping)
        self._pending = ""
        return restore(text, self._mapping)

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return restore(text, self._mapping)
