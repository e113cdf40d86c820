"""The graded similarity scorers: Levenshtein, ROUGE-L, BLEU (values equal to the
reference packages'), embedding similarity through a fake model caller; thresholds."""

from __future__ import annotations

from typing import Any

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from keel.core import ConfigError, JSONObject, MissingPrerequisite
from keel.evals._scorer import build_scorer
from keel.evals._scorers_similarity import cosine
from keel.evals._types import Case, Output, Score, ScoreContext


async def score(
    kind: str, text: str, expected: Any, context: ScoreContext | None = None, **settings: Any
) -> Score:
    built = build_scorer(kind, settings, location=f"scorers[0].{kind}")
    return await built.score(
        Case("c1", {}, expected=expected, line=1), Output(text), context or ScoreContext()
    )


async def test_levenshtein_graded_and_thresholded() -> None:
    graded = await score("levenshtein", "kitten", "sitting")
    assert graded.value == pytest.approx(1 - 3 / 7)
    assert graded.passed is None
    assert graded.explanation == "Levenshtein similarity 0.571 (3 edits)"
    assert (await score("levenshtein", "kitten", "sitting", threshold=0.5)).passed is True
    failed = await score("levenshtein", "kitten", "sitting", threshold=0.6)
    assert failed.passed is False
    assert failed.explanation.endswith("< 0.6")
    assert (await score("levenshtein", "Paris", "paris", case_sensitive=False)).value == 1.0
    # The best of several references.
    assert (await score("levenshtein", "colour", ["color", "colour"])).value == 1.0


async def test_rouge_l_equals_rouge_score() -> None:
    reference = "The quick brown fox jumps over the lazy dog"
    candidate = "A quick brown dog jumps over the fox"
    expected = rouge_scorer.RougeScorer(["rougeL"]).score(reference, candidate)["rougeL"]
    got = await score("rouge_l", candidate, reference)
    assert got.value == expected.fmeasure
    assert got.explanation == (
        f"ROUGE-L f {expected.fmeasure:.3f} (P {expected.precision:.3f}, R {expected.recall:.3f})"
    )
    assert (await score("rouge_l", candidate, reference, measure="recall")).value == expected.recall
    assert (await score("rouge_l", candidate, reference, threshold=0.9)).passed is False


async def test_bleu_equals_sacrebleu_over_100() -> None:
    reference = "The cat is sitting on the red mat."
    candidate = "The cat sits on the red mat."
    got = await score("bleu", candidate, reference)
    assert got.value == pytest.approx(sacrebleu.sentence_bleu(candidate, [reference]).score / 100, abs=1e-12)
    assert got.explanation.startswith(f"BLEU {got.value:.3f} (")
    several = await score("bleu", candidate, [reference, "The cat sits on the red mat."])
    assert several.value == pytest.approx(1.0)
    assert (await score("bleu", candidate, reference, threshold=0.2)).passed is True


def test_threshold_outside_0_1_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"scorers\[0\]\.bleu\.threshold: must be between 0 and 1"):
        build_scorer("bleu", {"threshold": 30}, location="scorers[0].bleu")


class FakeEmbedder:
    """Embeds texts as bags of known words, and records the calls."""

    VOCAB = ("cat", "dog", "mat", "sat", "car")

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    async def chat(self, model: str, messages: list[JSONObject], **params: Any) -> Output:
        raise AssertionError("not a chat scorer")

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        self.calls.append((model, texts))
        return [[float(text.lower().split().count(word)) for word in self.VOCAB] for text in texts]


async def test_embedding_similarity_cosine_via_the_caller() -> None:
    fake = FakeEmbedder()
    context = ScoreContext(models=fake, embedding_model="local-mini")
    same = await score("embedding_similarity", "cat sat mat", "the cat sat on the mat", context)
    assert same.value == pytest.approx(1.0)
    assert same.explanation == "cosine similarity 1.000 (local-mini)"
    assert fake.calls == [("local-mini", ["cat sat mat", "the cat sat on the mat"])]
    different = await score(
        "embedding_similarity", "dog car", "cat mat", context, model="other", threshold=0.5
    )
    assert (different.value, different.passed) == (0.0, False)
    assert fake.calls[-1][0] == "other"


async def test_embedding_similarity_needs_a_caller_and_a_model() -> None:
    with pytest.raises(MissingPrerequisite, match="needs a model gateway"):
        await score("embedding_similarity", "a", "b")
    with pytest.raises(MissingPrerequisite, match="needs an embedding model"):
        await score("embedding_similarity", "a", "b", ScoreContext(models=FakeEmbedder()))


def test_cosine() -> None:
    assert cosine([1, 0], [0, 1]) == 0.0
    assert cosine([1, 2], [2, 4]) == pytest.approx(1.0)
    assert cosine([0, 0], [1, 1]) == 0.0
    with pytest.raises(ValueError, match="different sizes"):
        cosine([1], [1, 2])
