"""Personal data and secrets out of dataset rows, with keel.guards' ``pii`` and
``secrets`` scanners and typed placeholders (``<EMAIL_1>``).

The same approach as ``keel.evals``' datasets from logs (not imported: a sibling
package): one mapping per row, so a value repeated in the prompt and the answer gets
the same placeholder; placeholders already present (the gateway's policy redacted the
logged body) are reserved so new ones do not reuse their numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from keel.guards import Redactions, Scanner, build_scanner
from keel.guards import redact as redact_spans

_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*?_\d+>")


class RowRedactor:
    def __init__(self) -> None:
        self.scanners: tuple[Scanner, ...] = (build_scanner("pii"), build_scanner("secrets"))

    def __call__(self, row: Any) -> tuple[Any, bool]:
        """``row`` with every string redacted, and whether anything was replaced."""
        mapping: Redactions = {}
        for text in _texts(row):
            for placeholder in _PLACEHOLDER.findall(text):
                mapping[placeholder] = placeholder
        reserved = len(mapping)
        redacted = self._redacted(row, mapping)
        return redacted, len(mapping) > reserved

    def _redacted(self, value: Any, mapping: Redactions) -> Any:
        if isinstance(value, str):
            spans = [span for scanner in self.scanners for span in scanner.scan(value).spans]
            return redact_spans(value, spans, mapping)[0] if spans else value
        if isinstance(value, Mapping):
            # Keys and roles are the schema's ("role", "content", "user"), never user text.
            return {k: v if k == "role" else self._redacted(v, mapping) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redacted(v, mapping) for v in value]
        return value


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
