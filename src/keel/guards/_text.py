# ruff: noqa: RUF001, RUF002  (look-alike letters from other scripts are the point here)
"""Text helpers the scanners share: hidden Unicode, look-alike letters, leetspeak,
Shannon entropy, and binary-input checks."""

from __future__ import annotations

import math
import re
from collections import Counter

from keel.core import InvalidRequest

# Zero-width and format characters that render as nothing, bidi controls that reorder
# what is shown, and the Unicode "tag" block (U+E0000..E007F) that can smuggle ASCII.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f]"
)
_TAGS = re.compile("[\U000e0020-\U000e007e]+")

# Letters from Cyrillic, Greek and fullwidth/mathematical blocks that look like Latin
# ones: folded to Latin before the injection rules look at a text.
_CONFUSABLES = {
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j",
    "ѕ": "s", "ԁ": "d", "ɡ": "g", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ν": "v", "ο": "o",
    "α": "a", "ι": "i", "κ": "k", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ε": "e",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "У": "Y", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S", "Α": "A", "Β": "B", "Ε": "E",
    "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T",
    "Υ": "Y", "Χ": "X",
}  # fmt: skip
_CONFUSABLE_TABLE = str.maketrans(_CONFUSABLES)
_NON_LATIN_LOOKALIKE = re.compile("[" + "".join(_CONFUSABLES) + "]")
_LATIN = re.compile("[A-Za-z]")
_WORD = re.compile(r"\w+")

_LEET_TABLE = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
# A word that mixes letters with at least two leet digits ("1gn0r3", "pr3v10us").
_LEET_WORD = re.compile(r"\b(?=[A-Za-z0-9]*[A-Za-z])(?=(?:[A-Za-z0-9]*[013457]){2})[A-Za-z0-9]{4,}\b")
_ROT13_TABLE = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm",
)
# Letters spelled out one at a time: "i g n o r e", "i.g.n.o.r.e", "i-g-n-o-r-e".
_SPACED = re.compile(r"\b(?:[A-Za-z][ .\-_*]){3,}[A-Za-z]\b")


def invisible_count(text: str) -> int:
    return len(_INVISIBLE.findall(text))


def strip_invisible(text: str) -> str:
    return _INVISIBLE.sub("", text)


def decode_tags(text: str) -> str:
    """ASCII hidden in Unicode tag characters (each tag is its ASCII letter + 0xE0000)."""
    return " ".join("".join(chr(ord(c) - 0xE0000) for c in m.group()) for m in _TAGS.finditer(text))


def mixed_script_words(text: str) -> int:
    """Words that mix Latin letters with look-alikes from other scripts ("іgnore")."""
    if not _NON_LATIN_LOOKALIKE.search(text):
        return 0
    return sum(1 for word in _WORD.findall(text) if _NON_LATIN_LOOKALIKE.search(word) and _LATIN.search(word))


def fold_confusables(text: str) -> str:
    return text.translate(_CONFUSABLE_TABLE)


_LEET_ANY = re.compile(r"\b(?=[A-Za-z0-9@$]*[A-Za-z])[A-Za-z0-9@$]*[013457@$][A-Za-z0-9@$]*")


def unleet(text: str) -> str:
    """Leetspeak read back as letters, in words that mix letters and digits only (so
    that numbers elsewhere stay numbers)."""
    return _LEET_ANY.sub(lambda m: m.group().translate(_LEET_TABLE), text)


def has_leet(text: str) -> bool:
    """At least two leetspeak words (one could be a product code: "h264", "x86")."""
    found = _LEET_WORD.search(text)
    return found is not None and _LEET_WORD.search(text, found.end()) is not None


def rot13(text: str) -> str:
    return text.translate(_ROT13_TABLE)


def join_spaced_letters(text: str) -> str:
    return _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group()), text)


def has_spaced_letters(text: str) -> bool:
    return _SPACED.search(text) is not None


def shannon_entropy(text: str) -> float:
    """Bits per character."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def char_classes(text: str) -> int:
    """How many of lower case, upper case, digits, other characters ``text`` uses."""
    return (
        any(c.islower() for c in text)
        + any(c.isupper() for c in text)
        + any(c.isdigit() for c in text)
        + any(not c.isalnum() for c in text)
    )


def ensure_text(data: str | bytes, *, what: str = "input") -> str:
    """``data`` as text, refusing binary: undecodable bytes or NUL/control characters
    (other than tab, newline, carriage return and form feed)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest(f"{what} is not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    if _BINARY.search(data):
        raise InvalidRequest(f"{what} looks binary (it contains control characters); guards scan text only")
    return data


_BINARY = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f]")
