"""The rule layer of the prompt-injection and jailbreak scanner.

Each rule is a weighted pattern in one category; a text's rule score is
``1 - prod(1 - weight)`` over the rules that fire, so two weak signals add up and one
strong signal is enough. Rules look at the text after hidden characters are removed
and look-alike letters folded, and again at every hidden payload found in it (base64,
hex, URL escapes, rot13, leetspeak, spelled-out letters, Unicode tag characters),
where a hit weighs more: hiding an instruction is itself a signal.

Rules are written for precision on look-alikes (``ignore the typo above``, role-play
that asks for a pirate voice, code that calls ``os.system``); the classifier catches
paraphrases the rules miss.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from dataclasses import dataclass

from keel.guards import _text
from keel.guards._injection_patterns import ANCHORS, NEEDS, RULE_SPECS

_I = re.IGNORECASE


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    category: str
    weight: float
    pattern: re.Pattern[str]
    # The rule runs only if one of these occurs in the lower-cased text (cheap prefilter).
    triggers: tuple[str, ...]
    # Words its match starts with (None: search everywhere).
    anchors: frozenset[str] | None = None
    # For anchored rules, ``triggers`` as whole words with their common inflections
    # (a set lookup instead of a substring search per trigger).
    trigger_words: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: str
    category: str
    weight: float
    start: int
    end: int
    # Where the hit was found: "text", or the hidden layer it was decoded from.
    layer: str = "text"


_TOKEN = re.compile(r"[a-z0-9']+")
_SUFFIXES = (
    "",
    "s",
    "es",
    "ed",
    "d",
    "ing",
    "y",
    "ies",
    "ion",
    "ions",
    "ation",
    "ations",
    "ize",
    "izing",
    "ise",
    "ising",
    "less",
    "ary",
    "aries",
    "al",
    "ly",
    "er",
    "ers",
    "en",
    "ive",
    "ness",
    "ity",
    "less",
    "ities",
    "e",
)


def _inflected(triggers: tuple[str, ...]) -> frozenset[str]:
    words: set[str] = set()
    for trigger in triggers:
        for word in _TOKEN.findall(trigger.lower()):
            words.update(word + suffix for suffix in _SUFFIXES)
    return frozenset(words)


def _rule(name: str, category: str, weight: float, pattern: str, triggers: tuple[str, ...]) -> Rule:
    triggers = tuple(NEEDS[name].split("|")) if name in NEEDS else triggers
    anchors = frozenset(ANCHORS[name].split()) if name in ANCHORS else None
    return Rule(
        name,
        category,
        weight,
        re.compile(pattern, _I | re.S),
        triggers,
        anchors,
        # Spec triggers are substrings (for search rules); ``NEEDS`` lists word stems.
        _inflected(triggers) if anchors is not None and name in NEEDS else frozenset(),
    )


RULES: tuple[Rule, ...] = tuple(_rule(*spec) for spec in RULE_SPECS)
CATEGORIES = tuple(sorted({rule.category for rule in RULES} | {"hidden_unicode"}))

_WS = re.compile(r"[ \t\r\f\v]+")
# A run long enough to hide an encoded sentence (base64, base64url, hex without spaces).
_LONG_RUN = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/=_\-]{16,}")
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_\-]+={0,2}")
_HEX_RUN = re.compile(r"(?:[0-9A-Fa-f]{2}){8,}")
_SPACED_HEX = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ :]){8,}[0-9A-Fa-f]{2}(?![0-9A-Fa-f])")
_URL_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
# Common English words as rot13 writes them: their presence means rot13 text.
_ROT13_WORDS = frozenset(
    ["vtaber", "vafgehpgvbaf", "cerivbhf", "flfgrz", "cebzcg", "sbetrg", "gur", "lbh", "naq", "ner", "vf"]
)
_HEX_PAIRS = frozenset(f"{i:02x}" for i in range(256))
_SINGLE_LETTERS = frozenset("bcdefghjklmnopqrstuvwxyz")
# Hidden-payload bonus: a decoded hit counts this much more (capped at 0.98).
_HIDDEN_BONUS = 0.15


def normalise(text: str) -> str:
    """The text the rules read: hidden characters removed, look-alikes folded to Latin,
    runs of spaces collapsed (offsets may move; rule hits report offsets into this)."""
    return _WS.sub(" ", _text.fold_confusables(_text.strip_invisible(text)))


def _words(lowered: str) -> frozenset[str]:
    return frozenset(_TOKEN.findall(lowered))


def _positions(lowered: str, word: str) -> list[int]:
    """Where ``word`` stands as a whole word in ``lowered``."""
    found = []
    at = lowered.find(word)
    while at >= 0:
        end = at + len(word)
        before = lowered[at - 1] if at else " "
        after = lowered[end] if end < len(lowered) else " "
        if not (before.isalnum() or before == "'") and not (after.isalnum() or after == "'"):
            found.append(at)
        at = lowered.find(word, at + 1)
    return found


def _first_match(
    rule: Rule, text: str, lowered: str, words: frozenset[str], cache: dict[str, list[int]]
) -> re.Match[str] | None:
    # Lower-casing can change the length of some non-ASCII text; offsets must agree.
    if rule.anchors is None or len(lowered) != len(text):
        return rule.pattern.search(text)
    hits = rule.anchors.intersection(words)
    if not hits:
        return None
    starts = []
    for word in hits:
        found = cache.get(word)
        if found is None:
            found = cache[word] = _positions(lowered, word)
        starts += found
    for pos in sorted(starts):
        m = rule.pattern.match(text, pos)
        if m is not None:
            return m
    return None


def match_rules(text: str, layer: str = "text") -> list[RuleHit]:
    lowered = text.lower()
    words = _words(lowered)
    positions: dict[str, list[int]] = {}  # anchor word -> where it stands, shared by rules
    hits = []
    for rule in RULES:
        if rule.anchors is not None:
            if rule.trigger_words and rule.trigger_words.isdisjoint(words):
                continue
        elif rule.triggers and not any(t in lowered for t in rule.triggers):
            continue
        m = _first_match(rule, text, lowered, words, positions)
        if m is not None:
            weight = rule.weight if layer == "text" else min(0.98, rule.weight + _HIDDEN_BONUS)
            hits.append(RuleHit(rule.name, rule.category, weight, m.start(), m.end(), layer))
    return hits


def _printable_ratio(text: str) -> float:
    return sum(c.isprintable() or c in "\n\t" for c in text) / max(1, len(text))


def _decode_base64(chunk: str) -> str | None:
    urlsafe = "-" in chunk or "_" in chunk
    try:
        raw = base64.b64decode(chunk + "=" * (-len(chunk) % 4), altchars=b"-_" if urlsafe else None)
        decoded = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return decoded if len(decoded) >= 8 and " " in decoded and _printable_ratio(decoded) > 0.95 else None


def _decode_hex(digits: str) -> str | None:
    try:
        decoded = bytes.fromhex(digits[: len(digits) // 2 * 2]).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded if " " in decoded and _printable_ratio(decoded) > 0.95 else None


def hidden_layers(text: str) -> list[tuple[str, str]]:
    """Payloads hidden in ``text``: (layer, decoded text) for each one found."""
    index = _words(text.lower())
    layers: list[tuple[str, str]] = []
    for run in _LONG_RUN.finditer(text):
        chunk = run.group()
        if _HEX_RUN.fullmatch(chunk):
            decoded = _decode_hex(chunk)
            if decoded is not None:
                layers.append(("hex", decoded))
                continue
        for piece in _BASE64_CHARS.findall(chunk):
            if len(piece) >= 16:
                decoded = _decode_base64(piece)
                if decoded is not None:
                    layers.append(("base64", decoded))
    if ":" in text or len(_HEX_PAIRS.intersection(index)) >= 6:
        for m in _SPACED_HEX.finditer(text):
            decoded = _decode_hex(re.sub(r"[ :]", "", m.group()))
            if decoded is not None:
                layers.append(("hex", decoded))
    if text.count("%") >= 3 and len(_URL_ESCAPE.findall(text)) >= 3:
        layers.append(("url_escapes", urllib.parse.unquote(text)))
    if "rot13" in index or "rot" in index or len(_ROT13_WORDS.intersection(index)) >= 2:
        layers.append(("rot13", _text.rot13(text)))
    if _text.has_leet(text):
        layers.append(("leetspeak", _text.unleet(text)))
    if len(_SINGLE_LETTERS.intersection(index)) >= 3 and _text.has_spaced_letters(text):
        layers.append(("spaced_letters", _text.join_spaced_letters(text)))
    return layers


@dataclass(frozen=True, slots=True)
class RuleReport:
    score: float
    hits: tuple[RuleHit, ...]
    invisible: int
    mixed_script: int

    @property
    def categories(self) -> list[str]:
        return sorted({h.category for h in self.hits})


def combine(weights: list[float]) -> float:
    remaining = 1.0
    for w in weights:
        remaining *= 1.0 - w
    return 1.0 - remaining


def evaluate_rules(text: str) -> RuleReport:
    """Every rule on ``text`` and on each payload hidden in it."""
    invisible = _text.invisible_count(text)
    mixed = _text.mixed_script_words(text)
    clean = normalise(text)
    hits = match_rules(clean)
    layers = hidden_layers(clean)
    tags = _text.decode_tags(text) if invisible else ""
    if tags:
        layers.append(("unicode_tags", tags))
    for layer, decoded in layers:
        hits += match_rules(_WS.sub(" ", decoded), layer)
    weights: dict[str, float] = {}
    for hit in hits:
        weights[hit.rule] = max(weights.get(hit.rule, 0.0), hit.weight)
    extra: list[float] = []
    if tags:
        extra.append(0.9)  # tag characters have no use in a prompt but smuggling
    elif invisible >= 3:
        extra.append(0.35)
    if mixed >= 2:
        extra.append(0.35)
    if (tags or invisible >= 3 or mixed >= 2) and not any(h.category == "hidden_unicode" for h in hits):
        hits.append(RuleHit("hidden_unicode", "hidden_unicode", max(extra), 0, 0))
    score = combine(list(weights.values()) + extra)
    return RuleReport(score, tuple(hits), invisible, mixed)
