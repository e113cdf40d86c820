"""Writing a dataset as JSONL, all or nothing."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from keel.core import JSONObject


def write_dataset(rows: Iterable[JSONObject], path: str | Path) -> int:
    """Write ``rows`` to ``path``, one JSON object a line; returns how many.

    The rows go to a temporary file next to ``path`` that replaces it only once every
    row is written and synced: an error part way (a value JSON cannot hold, a full disk)
    leaves ``path`` as it was, never half a dataset that a later run would read as whole.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same directory: os.replace is atomic only within one file system.
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    temp = Path(temp_name)
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False, allow_nan=False))
                out.write("\n")
                count += 1
            out.flush()
            os.fsync(out.fileno())
        # mkstemp makes the file private (0600); a dataset is meant to be shared like any
        # file the user writes, or keep the mode of the one it replaces.
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return count
