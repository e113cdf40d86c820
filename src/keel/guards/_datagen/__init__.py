"""Builds the labelled guard datasets in ``keel/data/guards`` (run
``python -m keel.guards._datagen``; deterministic for a seed).

Every set is made of templates filled with generated values. Templates are written
in three disjoint pools, one per split (train, dev, test), so that the test numbers
measure how the scanners do on phrasings and contexts they were not tuned or trained
on; hand-written examples (attacks and look-alikes) are likewise split by hand.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPLITS = ("train", "dev", "test")
_SLOT = re.compile(r"\{([A-Z][A-Z0-9_]*|[a-z_]+)\}")

ValueMaker = Callable[[random.Random], str]


@dataclass
class Filled:
    text: str
    spans: list[dict[str, Any]] = field(default_factory=list)


def fill(
    template: str,
    rng: random.Random,
    entities: dict[str, ValueMaker],
    fillers: dict[str, ValueMaker],
    label_as: dict[str, str | None] | None = None,
) -> Filled:
    """``template`` with each ``{ENTITY}`` slot filled (and labelled as a span) and each
    ``{filler}`` slot filled (not labelled). ``label_as`` maps a slot to the entity it
    is labelled as (None: filled but not labelled, for look-alikes)."""
    # "{{" and "}}" are literal braces: swapped for one placeholder character each, so
    # offsets computed on the way stay right when they are swapped back.
    template = template.replace("{{", "\x00").replace("}}", "\x01")
    out = ""
    spans: list[dict[str, Any]] = []
    cursor = 0
    for m in _SLOT.finditer(template):
        out += template[cursor : m.start()]
        name = m.group(1)
        if name.isupper():
            value = entities[name](rng)
            entity = (label_as or {}).get(name, name.split("__")[0])
            if entity is not None:
                spans.append({"entity": entity, "start": len(out), "end": len(out) + len(value)})
            out += value
        else:
            out += fillers[name](rng)
        cursor = m.end()
    out += template[cursor:]
    return Filled(out.replace("\x00", "{").replace("\x01", "}"), spans)


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    return count


def choice(options: list[str] | tuple[str, ...]) -> ValueMaker:
    return lambda rng: rng.choice(options)
