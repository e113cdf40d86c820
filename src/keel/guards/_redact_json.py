"""Personal data and secrets out of a JSON value (a dataset row: variables, messages,
an answer), with the ``pii`` and ``secrets`` scanners and typed placeholders.

One mapping per value, so a value repeated in the prompt and the answer gets the same
``<EMAIL_1>``; placeholders already present (the gateway's policy redacted the logged
body) are reserved so new ones do not reuse their numbers. Keys and message roles are
schema, never user text, and are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from keel.guards._redact import Redactions, redact
from keel.guards._registry import build_scanner
from keel.guards._result import Scanner

_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*?_\d+>")


class JsonRedactor:
    def __init__(self) -> None:
        self.scanners: tuple[Scanner, ...] = (build_scanner("pii"), build_scanner("secrets"))

    def __call__(self, value: Any) -> tuple[Any, bool]:
        """``value`` with every string in it redacted, and whether anything was replaced."""
        mapping: Redactions = {}
        for text in _texts(value):
            for placeholder in _PLACEHOLDER.findall(text):
                mapping[placeholder] = placeholder
        reserved = len(mapping)
        redacted = self._redacted(value, mapping)
        return redacted, len(mapping) > reserved

    def _redacted(self, value: Any, mapping: Redactions) -> Any:
        if isinstance(value, str):
            spans = [span for scanner in self.scanners for span in scanner.scan(value).spans]
            return redact(value, spans, mapping)[0] if spans else value
        if isinstance(value, Mapping):
            return {k: v if k == "role" else self._redacted(v, mapping) for k, v in value.items()}
        if isinstance(value, list | tuple):
            items = [self._redacted(v, mapping) for v in value]
            return items if isinstance(value, list) else tuple(items)
        return value


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)
