"""The injection and jailbreak set.

Attacks are composed from parts (an override phrase, a payload, a wrapper that puts
them in a user message or in a document the model is asked to process) and some are
then hidden (base64, hex, rot13, leetspeak, spaced letters, look-alike letters,
zero-width characters, Unicode tags). Benign prompts are ordinary tasks plus
hand-written look-alikes: role-play that is not a jailbreak, "ignore the typo above",
code that calls ``os.system``, questions about prompt injection itself.

Every list of phrasings exists once per split; no phrasing is shared between splits.
"""

from __future__ import annotations

import base64
import random
from typing import Any

from keel.guards._datagen import _injection_text as tx


def _hide(text: str, how: str, rng: random.Random, split: str) -> str:
    if how == "base64":
        encoded = base64.b64encode(text.encode()).decode()
        return rng.choice(tx.DECODE_WRAPPERS_BY_SPLIT[split]).format(payload=encoded, scheme="base64")
    if how == "hex":
        encoded = text.encode().hex(" ") if rng.random() < 0.5 else text.encode().hex()
        return rng.choice(tx.DECODE_WRAPPERS_BY_SPLIT[split]).format(payload=encoded, scheme="hex")
    if how == "rot13":
        import codecs

        return rng.choice(tx.DECODE_WRAPPERS_BY_SPLIT[split]).format(
            payload=codecs.encode(text, "rot13"), scheme="rot13"
        )
    if how == "leet":
        table = str.maketrans({"o": "0", "i": "1", "e": "3", "a": "4", "s": "5", "t": "7"})
        return "".join(ch.translate(table) if rng.random() < 0.7 else ch for ch in text)
    if how == "spaced":
        words = text.split()
        k = rng.randrange(len(words))
        words[k] = " ".join(words[k])
        if len(words) > 2:
            j = rng.randrange(len(words))
            words[j] = ".".join(words[j]) if j != k else words[j]
        return " ".join(words)
    if how == "homoglyph":
        # Cyrillic letters that look like these Latin ones.
        glyphs = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "i": "\u0456", "c": "\u0441", "p": "\u0440"}
        return "".join(glyphs.get(ch, ch) if rng.random() < 0.5 else ch for ch in text)
    if how == "zero_width":
        return "".join(ch + ("\u200b" if ch.isalpha() and rng.random() < 0.3 else "") for ch in text)
    if how == "tags":
        hidden = "".join(chr(0xE0000 + ord(c)) for c in text if 0x20 <= ord(c) < 0x7F)
        return rng.choice(tx.BENIGN_TASKS[split]) + " " + hidden
    raise ValueError(how)


HIDE_KINDS = ("base64", "hex", "rot13", "leet", "spaced", "homoglyph", "zero_width", "tags")


def _attack(split: str, rng: random.Random) -> tuple[str, str, str]:
    """(text, label, category) of one generated attack."""
    kind = rng.choices(
        ["override", "extraction", "jailbreak", "indirect", "delimiter"], weights=[4, 2, 4, 2, 1]
    )[0]
    if kind == "override":
        core = f"{rng.choice(tx.OVERRIDES[split])} {rng.choice(tx.PAYLOADS[split])}"
        core = core[0].upper() + core[1:]
        text = rng.choice(tx.USER_WRAPPERS[split]).format(
            attack=core, task=rng.choice(tx.BENIGN_TASKS[split])
        )
        label = "injection"
    elif kind == "extraction":
        text = rng.choice(tx.EXTRACTIONS[split])
        if rng.random() < 0.4:
            text = rng.choice(tx.USER_WRAPPERS[split]).format(
                attack=text, task=rng.choice(tx.BENIGN_TASKS[split])
            )
        label = "injection"
    elif kind == "jailbreak":
        text = rng.choice(tx.JAILBREAKS[split]).format(request=rng.choice(tx.HARMFUL[split]))
        label = "jailbreak"
    elif kind == "indirect":
        core = f"{rng.choice(tx.OVERRIDES[split])} {rng.choice(tx.PAYLOADS[split])}"
        text = rng.choice(tx.DOCUMENTS[split]).format(
            attack=rng.choice(tx.INDIRECT_LEADS[split]) + core, task=rng.choice(tx.DOC_TASKS[split])
        )
        label = "injection"
    else:
        text = rng.choice(tx.DELIMITERS[split]).format(
            payload=rng.choice(tx.PAYLOADS[split]), task=rng.choice(tx.BENIGN_TASKS[split])
        )
        label = "injection"
    if rng.random() < 0.18:
        how = rng.choice(HIDE_KINDS)
        return _hide(text, how, rng, split), label, f"{kind}+{how}"
    return text, label, kind


def build(split: str, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(f"injection-{split}-{seed}")
    sizes = {"train": (1800, 1600), "dev": (300, 300), "test": (500, 300)}[split]
    records: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(text: str, label: str, category: str, hard: bool) -> None:
        if text in seen:
            return
        seen.add(text)
        records.append(
            {
                "id": f"inj-{split}-{len(records):05d}",
                "text": text,
                "label": label,
                "category": category,
                "hard": hard,
            }
        )

    attempts = 0
    while sum(r["label"] != "benign" for r in records) < sizes[0] and attempts < sizes[0] * 5:
        attempts += 1
        add(*_attack(split, rng), hard=False)
    for text in tx.HANDWRITTEN_ATTACKS[split]:
        add(
            text,
            "jailbreak" if "jailbreak" in text.lower() or "DAN" in text else "injection",
            "handwritten",
            False,
        )
    attempts = 0
    while (
        sum(r["label"] == "benign" and not r["hard"] for r in records) < sizes[1] and attempts < sizes[1] * 5
    ):
        attempts += 1
        task = rng.choice(tx.BENIGN_TASKS[split])
        if rng.random() < 0.4:
            lines = rng.sample(
                tx.BENIGN_DOC_LINES[split], k=min(len(tx.BENIGN_DOC_LINES[split]), rng.randint(1, 2))
            )
            task = rng.choice(tx.DOCUMENTS[split]).format(
                attack=" ".join(lines), task=rng.choice(tx.DOC_TASKS[split])
            )
        add(task, "benign", "normal", False)
    generated = list(tx.GENERATED_LOOKALIKES[split])
    rng.shuffle(generated)
    for text in generated[: {"train": 900, "dev": 200, "test": 320}[split]]:
        add(text, "benign", "lookalike", True)
    for text in tx.LOOKALIKES[split]:
        add(text, "benign", "lookalike", True)
        # Each look-alike also inside a longer request, so that length is no signal.
        add(f"{rng.choice(tx.BENIGN_TASKS[split])} {text}", "benign", "lookalike", True)
    rng.shuffle(records)
    for i, record in enumerate(records):
        record["id"] = f"inj-{split}-{i:05d}"
    return records
