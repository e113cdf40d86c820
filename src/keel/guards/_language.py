# ruff: noqa: RUF001  (look-alike letters from other scripts are the point here)
"""An offline language identifier and the ``language`` scanner.

Two steps: the writing system (Han, kana, Hangul, Cyrillic, Arabic, Hebrew, Greek,
Devanagari, Thai) from character ranges, then, for Latin and Cyrillic text, the
language whose most frequent function words cover the most of the text. It is meant
for "is this English (or one of a few allowed languages)?" on texts of a sentence or
more; under ``min_words`` words it does not decide (docs/guards.md has its accuracy).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from keel.guards._registry import guard
from keel.guards._result import NO_CONTEXT, GuardResult, RuleScanner, ScanContext

_STOPWORDS: dict[str, str] = {
    "en": "the and of to a in is that it for you was with on as are be this have not but they at from or by "
    "what all we can your an will my there their would if do about which so me has how when",
    "de": "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an "
    "werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über einen so zum war "
    "haben nur oder ich wir mir",
    "fr": "le la les de des et un une du en est que qui dans pour pas au sur ne se ce il elle avec sont par "
    "plus nous vous je mais ou cette aux leur été être avoir fait comme tout",
    "es": "el la los las de del y en que un una es por con para no se su al lo como más pero sus le ya o "
    "este fue ha sí porque esta entre cuando muy sin sobre también me hay donde yo",
    "it": "il lo la i gli le di del della e in che un una è per con non si da al alla sono come ma più anche "
    "questo ha nel nella dei delle se io mi ti ci tutto",
    "pt": "o a os as de do da dos das e em que um uma é para com não se por no na mais como mas ao foi ele "
    "ela são seu sua ou quando muito também já eu você isso",
    "nl": "de het een en van in is dat op te zijn voor met niet aan er om ook als bij maar door nog wat dan "
    "worden uit hij ze je ik wij naar kan",
    "sv": "och att det som en på är av för med till den har de inte om ett var jag men så vi kan hade han "
    "sig från eller när vad",
    "pl": "i w nie na się z jest do to że a o jak ale po co tak za od już jego jej są dla czy tylko mnie być "
    "był ich przez",
    "tr": "bir ve bu da de için ile ne çok daha gibi ama o ben sen var yok mi mı olan olarak kadar en her "
    "şey değil",
    "id": "yang dan di ini itu dengan untuk tidak dari dalam akan pada ke ada juga saya kami mereka bisa "
    "sudah atau karena",
    "ru": "и в не на я что он с как а то все она так его но да ты к у же вы за бы по только ее мне было "
    "вот от меня еще нет о из ему теперь когда",
    "uk": "і в не на я що він з як а то все вона так його але та ти до у же ви за би по тільки її мені було "
    "ось від мене ще немає про із йому коли це є",
}
_WORDS = {lang: frozenset(words.split()) for lang, words in _STOPWORDS.items()}
_SCRIPTS: list[tuple[str, re.Pattern[str]]] = [
    ("ja", re.compile("[\u3040-\u30ff]")),
    ("ko", re.compile("[\uac00-\ud7af\u1100-\u11ff]")),
    ("zh", re.compile("[\u4e00-\u9fff]")),
    ("ar", re.compile("[\u0600-\u06ff]")),
    ("he", re.compile("[\u0590-\u05ff]")),
    ("el", re.compile("[\u0370-\u03ff]")),
    ("hi", re.compile("[\u0900-\u097f]")),
    ("th", re.compile("[\u0e00-\u0e7f]")),
    ("cyrillic", re.compile("[\u0400-\u04ff]")),
]
_LETTER_WORD = re.compile(r"[^\W\d_]+")
SUPPORTED_LANGUAGES = tuple(sorted({*_STOPWORDS, "ja", "ko", "zh", "ar", "he", "el", "hi", "th"}))


def detect_language(text: str, min_words: int = 4) -> tuple[str | None, float]:
    """(language code or None when unsure, confidence 0..1)."""
    letters = sum(c.isalpha() for c in text)
    if letters == 0:
        return None, 0.0
    for lang, script in _SCRIPTS:
        share = len(script.findall(text)) / letters
        if share > 0.3:
            if lang != "cyrillic":
                return lang, min(1.0, share + 0.2)
            return _by_stopwords(text, ("ru", "uk"), min_words)
    return _by_stopwords(text, [lang for lang in _STOPWORDS if lang not in ("ru", "uk")], min_words)


def _by_stopwords(text: str, candidates: Sequence[str], min_words: int) -> tuple[str | None, float]:
    words = [w.lower() for w in _LETTER_WORD.findall(text)]
    if len(words) < min_words:
        return None, 0.0
    scores = {lang: sum(w in _WORDS[lang] for w in words) for lang in candidates}
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    best, best_score = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0
    if best_score == 0:
        return None, 0.0
    # Confidence: how far the winner is ahead, and how much of the text it explains.
    margin = (best_score - second) / best_score
    coverage = min(1.0, best_score / max(1, len(words)) * 3)
    return best, round(margin * 0.6 + coverage * 0.4, 4)


class LanguageScanner(RuleScanner):
    def __init__(self, allow: frozenset[str], min_words: int, min_confidence: float) -> None:
        self.allow = allow
        self.min_words = min_words
        self.min_confidence = min_confidence

    def scan(self, text: str, context: ScanContext = NO_CONTEXT) -> GuardResult:
        language, confidence = detect_language(text, self.min_words)
        if language is None or language in self.allow:
            return GuardResult("language", "pass", 0.0, (), f"language {language or 'undecided'}")
        if confidence < self.min_confidence:
            return GuardResult("language", "flag", confidence, (), f"language {language}? (not allowed)")
        return GuardResult("language", "block", confidence, (), f"language {language} is not allowed")


@guard("language")
def language(allow: Sequence[str], min_words: int = 4, min_confidence: float = 0.3) -> LanguageScanner:
    """Only texts in ``allow`` (ISO 639-1 codes: en, de, fr, ...)."""
    unknown = sorted(set(allow) - set(SUPPORTED_LANGUAGES))
    if unknown:
        raise ValueError(
            f"unsupported language(s) {', '.join(unknown)} (known: {', '.join(SUPPORTED_LANGUAGES)})"
        )
    if not allow:
        raise ValueError("language needs at least one allowed language")
    return LanguageScanner(frozenset(allow), min_words, min_confidence)
