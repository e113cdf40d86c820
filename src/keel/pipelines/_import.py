"""``import_hh``: HH-RLHF-style JSONL (``{"chosen": TEXT, "rejected": TEXT}`` a line) into
a preference dataset directory, in TRL's conversational format like an export.

Every line is checked before anything is written: the first malformed one fails the
import with its line number, and no directory is left behind.
"""

from __future__ import annotations

import json
from pathlib import Path

from keel.core import InvalidRequest
from keel.guards import JsonRedactor
from keel.pipelines._export import ExportResult, dedupe_key
from keel.pipelines._hh import hh_to_preference
from keel.pipelines._layout import split_rows, write_dataset


def import_hh(
    source: Path,
    out: Path,
    *,
    eval_fraction: float = 0.1,
    seed: int = 0,
    redact: bool = True,
) -> ExportResult:
    """Read ``source`` (JSONL, blank lines ignored) and write the dataset to ``out``."""
    rows = []
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{source} is not UTF-8 text: {exc.reason}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise InvalidRequest(f"{source}, line {number}: not valid JSON ({exc})") from None
        try:
            rows.append(hh_to_preference(value))
        except InvalidRequest as exc:
            raise InvalidRequest(f"{source}, line {number}: {exc.message}") from None
    if not rows:
        raise InvalidRequest(f"{source} holds no rows: nothing to import")
    redactor = JsonRedactor() if redact else None
    kept, seen = [], set()
    duplicates = redacted = 0
    for row in rows:
        if redactor is not None:
            row, changed = redactor(row)
            redacted += changed
        key = dedupe_key(row)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        kept.append(row)
    train, evaluation = split_rows(kept, eval_fraction=eval_fraction, seed=seed)
    details = {
        "filters": {"import": source.name, "redact": redact},
        "seed": seed,
        "eval_fraction": eval_fraction,
        "sources": {"hh_import": len(kept)},
        "selected_lines": len(rows),
        "duplicates": duplicates,
        "redacted_rows": redacted,
        "skipped": {},
    }
    manifest = write_dataset(
        out, kind="preference", fmt="trl", train=train, evaluation=evaluation, details=details
    )
    return ExportResult(out, manifest)
