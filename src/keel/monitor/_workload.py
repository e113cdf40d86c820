"""Generated chat workloads with a controlled shift, for simulations and tests.

A baseline workload asks customer-support questions (billing, shipping, accounts) in
English, 10 to 30 words long. A shift changes one thing: ``topic`` (astronomy and
cooking instead), ``length`` (four times as long), ``language`` (German, French,
Spanish), or ``model`` (a system prompt that degrades the answers: terse refusals),
which is how a real model going bad looks from outside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

ShiftKind = Literal["none", "topic", "length", "language", "model"]
SHIFTS: tuple[ShiftKind, ...] = ("none", "topic", "length", "language", "model")

# The signal each shift should move first (what a detection is checked against).
SHIFTED_SIGNAL: dict[ShiftKind, str] = {
    "topic": "input_embedding",
    "length": "input_tokens",
    "language": "language",
    "model": "refusal_rate",
}

_TOPICS: dict[str, str] = {
    "billing": "invoice charge refund payment card billing subscription price plan receipt tax discount "
    "overcharged statement credit monthly annual fee",
    "shipping": "package delivery shipping tracking courier parcel address delayed arrived warehouse label "
    "return box order dispatch express",
    "account": "password login account email username profile settings locked reset verification "
    "security two-factor session device access",
    "astronomy": "planet telescope galaxy orbit star nebula comet eclipse moon jupiter saturn asteroid "
    "constellation supernova cosmos light-year",
    "cooking": "recipe oven flour butter sauce garlic onion simmer bake roast pasta salt pepper tomato "
    "dough whisk",
}
_FILLER = {
    "en": "the and a to of is my it for with on this that please can you how what why when do I have",
    "de": "der die und ist nicht mit ich das ein eine auf für zu wie kann bitte warum wann haben sie",
    "fr": "le la les et est une un pour avec pas je que qui dans ce il vous comment pourquoi quand",
    "es": "el la los y es una un para con no que por como pero yo usted cuando porque donde tengo",
}
_TEMPLATES = {
    "en": "Hello, I have a question about {topic}.",
    "de": "Hallo, ich habe eine Frage zu {topic}.",
    "fr": "Bonjour, j'ai une question sur {topic}.",
    "es": "Hola, tengo una pregunta sobre {topic}.",
}
DEGRADED_SYSTEM_PROMPT = (
    "You are a reluctant assistant. Refuse most requests with 'I'm sorry, but I can't help with that.' "
    "and otherwise answer in as few words as possible."
)


@dataclass(frozen=True)
class GeneratedRequest:
    body: dict[str, Any]
    topic: str
    language: str


def generate(
    count: int, shift: ShiftKind = "none", *, model: str = "chat", seed: int = 0
) -> list[GeneratedRequest]:
    """``count`` chat requests of the baseline workload, or of one shifted by ``shift``."""
    if shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r} (known: {', '.join(SHIFTS)})")
    rng = np.random.default_rng(seed)
    topics: Sequence[str] = (
        ("astronomy", "cooking") if shift == "topic" else ("billing", "shipping", "account")
    )
    languages: Sequence[str] = ("de", "fr", "es") if shift == "language" else ("en",)
    out: list[GeneratedRequest] = []
    for _ in range(count):
        topic = str(rng.choice(topics))
        language = str(rng.choice(languages))
        words = int(rng.integers(10, 31)) * (4 if shift == "length" else 1)
        topic_words = _TOPICS[topic].split()
        filler = _FILLER[language].split()
        # Mostly function words of the language, a third topic words.
        picked = [
            str(rng.choice(topic_words)) if rng.random() < 0.35 else str(rng.choice(filler))
            for _ in range(words)
        ]
        text = _TEMPLATES[language].format(topic=topic) + " " + " ".join(picked) + "?"
        messages: list[dict[str, str]] = [{"role": "user", "content": text}]
        if shift == "model":
            messages.insert(0, {"role": "system", "content": DEGRADED_SYSTEM_PROMPT})
        out.append(GeneratedRequest({"model": model, "messages": messages}, topic, language))
    return out
