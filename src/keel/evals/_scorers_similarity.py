"""Graded scorers of how close the output is to the expected text: Levenshtein
similarity, ROUGE-L, BLEU, and the cosine similarity of embeddings. Each is a value in
0..1; a ``threshold`` makes it pass/fail (and ``binary``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from keel.core import MissingPrerequisite, SettingError
from keel.evals._scorer import BaseScorer, scorer
from keel.evals._text_metrics import Smoothing, levenshtein_distance, rouge_l, sentence_bleu
from keel.evals._types import Case, Output, Score, ScoreContext


def _check_threshold(threshold: float | None) -> None:
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise SettingError("threshold", "must be between 0 and 1")


class Levenshtein(BaseScorer):
    def __init__(self, threshold: float | None, case_sensitive: bool, field: str | None) -> None:
        super().__init__(binary=threshold is not None, field=field)
        self.threshold = threshold
        self.case_sensitive = case_sensitive

    def check(self, case: Case, output: Output) -> Score:
        text = output.text.strip()
        best, best_distance = -1.0, 0
        for ref in self.expected_texts(case):
            a, b = (text, ref.strip()) if self.case_sensitive else (text.casefold(), ref.strip().casefold())
            distance = levenshtein_distance(a, b)
            longest = max(len(a), len(b))
            value = 1.0 - distance / longest if longest else 1.0
            if value > best:
                best, best_distance = value, distance
        return self.graded(best, self.threshold, f"Levenshtein similarity {best:.3f} ({best_distance} edits)")


@scorer("levenshtein")
def levenshtein(
    threshold: float | None = None, case_sensitive: bool = True, field: str | None = None
) -> Levenshtein:
    """``1 - edit distance / length of the longer text`` between the output and the
    expected text (the best of a list), both stripped."""
    _check_threshold(threshold)
    return Levenshtein(threshold, case_sensitive, field)


Measure = Literal["f", "precision", "recall"]


class RougeLScorer(BaseScorer):
    def __init__(self, threshold: float | None, measure: Measure, field: str | None) -> None:
        super().__init__(binary=threshold is not None, field=field)
        self.threshold = threshold
        self.measure = measure

    def check(self, case: Case, output: Output) -> Score:
        scores = [rouge_l(ref, output.text) for ref in self.expected_texts(case)]
        # Several references: the best one, by F-measure (rouge-score's score_multi).
        best = max(scores, key=lambda s: s.fmeasure)
        value = {"f": best.fmeasure, "precision": best.precision, "recall": best.recall}[self.measure]
        detail = f"ROUGE-L {self.measure} {value:.3f} (P {best.precision:.3f}, R {best.recall:.3f})"
        return self.graded(value, self.threshold, detail)


@scorer("rouge_l")
def rouge_l_scorer(
    threshold: float | None = None, measure: Measure = "f", field: str | None = None
) -> RougeLScorer:
    """ROUGE-L (longest common subsequence of words, rouge-score's tokenisation) of the
    output against the expected text; ``measure``: ``f``, ``precision`` or ``recall``."""
    _check_threshold(threshold)
    return RougeLScorer(threshold, measure, field)


class BleuScorer(BaseScorer):
    def __init__(
        self, threshold: float | None, lowercase: bool, smooth_method: Smoothing, field: str | None
    ) -> None:
        super().__init__(binary=threshold is not None, field=field)
        self.threshold = threshold
        self.lowercase = lowercase
        self.smooth_method = smooth_method

    def check(self, case: Case, output: Output) -> Score:
        result = sentence_bleu(
            output.text, self.expected_texts(case), lowercase=self.lowercase, smooth_method=self.smooth_method
        )
        value = result.score / 100.0
        precisions = "/".join(f"{p:.1f}" for p in result.precisions)
        detail = f"BLEU {value:.3f} ({precisions}, BP {result.bp:.3f})"
        return self.graded(value, self.threshold, detail)


@scorer("bleu")
def bleu(
    threshold: float | None = None,
    lowercase: bool = False,
    smooth_method: Smoothing = "exp",
    field: str | None = None,
) -> BleuScorer:
    """Sentence BLEU (sacrebleu's defaults: 13a tokens, exponential smoothing, effective
    order) of the output against the expected text (a list: several references), on a
    0..1 scale (sacrebleu's score / 100)."""
    _check_threshold(threshold)
    return BleuScorer(threshold, lowercase, smooth_method, field)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; 0 when either vector is zero."""
    if len(a) != len(b):
        raise ValueError(f"embeddings of different sizes ({len(a)} and {len(b)})")
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norms if norms > 0 else 0.0


class EmbeddingSimilarity(BaseScorer):
    def __init__(self, model: str | None, threshold: float | None, field: str | None) -> None:
        super().__init__(binary=threshold is not None, field=field)
        self.model = model
        self.threshold = threshold

    async def evaluate(self, case: Case, output: Output, context: ScoreContext) -> Score:
        refs = self.expected_texts(case)
        model = self.model or context.embedding_model
        if context.models is None:
            raise MissingPrerequisite("scorer embedding_similarity needs a model gateway to embed with")
        if model is None:
            raise MissingPrerequisite(
                "scorer embedding_similarity needs an embedding model: "
                "set its `model` or the suite's embedding model"
            )
        vectors = await context.models.embed(model, [output.text, *refs])
        if len(vectors) != len(refs) + 1:
            raise MissingPrerequisite(
                f"embedding model {model!r} returned {len(vectors)} vectors for {len(refs) + 1}"
            )
        value = max(cosine(vectors[0], ref) for ref in vectors[1:])
        # Cosine can be slightly negative; the metric stays in 0..1 like the others.
        value = min(1.0, max(0.0, value))
        return self.graded(value, self.threshold, f"cosine similarity {value:.3f} ({model})")


@scorer("embedding_similarity")
def embedding_similarity(
    model: str | None = None, threshold: float | None = None, field: str | None = None
) -> EmbeddingSimilarity:
    """Cosine similarity of the embeddings of the output and the expected text (the best
    of a list), with ``model`` or the suite's embedding model, through the gateway."""
    _check_threshold(threshold)
    return EmbeddingSimilarity(model, threshold, field)
