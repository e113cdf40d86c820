"""How far reviewers agree: Cohen's kappa (two reviewers, categories) and Krippendorff's
alpha (any number of reviewers, missing ratings allowed; nominal or interval data).

Both are 1 for perfect agreement and 0 for agreement no better than chance; None when
undefined (every rating the same category, so chance agreement is already perfect, or
fewer than two ratings of one item to compare).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Level = Literal["nominal", "interval"]
Value = float | int | str


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two reviewers' categories for the same items (paired by position)."""
    if len(first) != len(second):
        raise ValueError("both reviewers must rate the same items")
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    counts_a, counts_b = Counter(first), Counter(second)
    expected = sum(counts_a[c] * counts_b[c] for c in counts_a) / (n * n)
    if expected >= 1:
        return None
    return (observed - expected) / (1 - expected)


def krippendorff_alpha(units: Sequence[Sequence[Value]], level: Level = "nominal") -> float | None:
    """Krippendorff's alpha. ``units``: for each item, the values its reviewers gave
    (missing ratings simply absent). Items with fewer than two values are not pairable
    and do not count."""
    pairable = [list(values) for values in units if len(values) >= 2]
    n = sum(len(values) for values in pairable)
    if n < 2:
        return None

    def delta(a: Value, b: Value) -> float:
        if level == "nominal":
            return 0.0 if a == b else 1.0
        return (float(a) - float(b)) ** 2

    observed = 0.0
    for values in pairable:
        within = sum(delta(a, b) for a, b in itertools.permutations(values, 2))
        observed += within / (len(values) - 1)
    observed /= n
    everything = [v for values in pairable for v in values]
    if level == "nominal":
        counts = Counter(everything)
        disagreeing_pairs = n * (n - 1) - sum(c * (c - 1) for c in counts.values())
        expected = disagreeing_pairs / (n * (n - 1))
    else:
        floats = [float(v) for v in everything]
        total, squares = sum(floats), sum(v * v for v in floats)
        # sum over ordered pairs i != j of (v_i - v_j)^2 = 2n·Σv² − 2(Σv)²
        expected = (2 * n * squares - 2 * total * total) / (n * (n - 1))
    if expected == 0:
        return None
    return 1 - observed / expected


@dataclass(frozen=True, slots=True)
class Agreement:
    """Agreement on one score: ``items`` rated by two reviewers or more, ``level`` of
    its data, Krippendorff's ``alpha``, and Cohen's ``kappa`` (categories only: the mean
    over pairs of reviewers of the kappa on the items both rated)."""

    score: str
    level: Level
    items: int
    ratings: int
    reviewers: int
    alpha: float | None
    kappa: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "score": self.score,
            "level": self.level,
            "items": self.items,
            "ratings": self.ratings,
            "reviewers": self.reviewers,
            "alpha": self.alpha,
            "kappa": self.kappa,
        }


def agreement(score: str, ratings: Mapping[str, Mapping[str, Value]]) -> Agreement:
    """Agreement on ``score`` from ``ratings[item][reviewer] = value``. Strings make the
    score categorical (nominal); numbers interval."""
    values = [v for by_reviewer in ratings.values() for v in by_reviewer.values()]
    level: Level = "nominal" if any(isinstance(v, str) for v in values) else "interval"
    units = [list(by_reviewer.values()) for by_reviewer in ratings.values()]
    reviewers = sorted({r for by_reviewer in ratings.values() for r in by_reviewer})
    kappa = None
    if level == "nominal":
        kappas: list[float] = []
        for a, b in itertools.combinations(reviewers, 2):
            both = [r for r in ratings.values() if a in r and b in r]
            if both:
                k = cohen_kappa([r[a] for r in both], [r[b] for r in both])
                if k is not None:
                    kappas.append(k)
        kappa = sum(kappas) / len(kappas) if kappas else None
    return Agreement(
        score=score,
        level=level,
        items=sum(1 for unit in units if len(unit) >= 2),
        ratings=len(values),
        reviewers=len(reviewers),
        alpha=krippendorff_alpha(units, level),
        kappa=kappa,
    )
