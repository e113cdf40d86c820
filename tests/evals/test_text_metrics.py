"""The pure-Python text metrics against their reference implementations: ROUGE-L
against ``rouge-score`` and BLEU against ``sacrebleu``, on one shared sample of sentence
pairs; Levenshtein and LCS against the textbook dynamic programmes."""

from __future__ import annotations

import random

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from keel.evals._text_metrics import (
    _levenshtein_table,
    corpus_bleu,
    lcs_length,
    levenshtein_distance,
    levenshtein_similarity,
    rouge_l,
    rouge_tokens,
    sentence_bleu,
    tokenize_13a,
)

HAND_WRITTEN: list[tuple[str, str]] = [
    ("The cat sat on the mat.", "The cat sat on the mat."),
    ("The cat sat on the mat.", "the cat is on the mat"),
    ("The quick brown fox jumps over the lazy dog", "A quick brown dog jumps over the lazy fox!"),
    ("Paris is the capital of France.", "The capital of France is Paris."),
    ("Paris", "paris"),
    ("", "something"),
    ("something", ""),
    ("", ""),
    ("   ", "..."),
    ("!!!", "?!?"),
    ("the the the the", "the"),
    ("the", "the the the the the the the"),
    ("It costs $3,000.50 (approx.)", "It costs about $3000.50, approximately."),
    ("e-mail me at a.b@example.com", "email me at a.b@example.com"),
    ("Tom's dog isn't here; it's over there.", "Toms dog is not here - its over there"),
    ("10-20 people came", "between 10 and 20 people came"),
    ("He said &quot;hi&quot; &amp; left", 'He said "hi" & left'),
    ("Line one.\nLine two.", "Line one. Line two."),
    ("Hyphen-\nated word", "Hyphenated word"),
    ("<skipped> text", "text"),
    ("Café naïve résumé", "Cafe naive resume"),
    ("Ünïcödé ÄÖÜ ß", "unicode aou ss"),
    ("Numbers 1 2 3 4 5 6 7 8 9 10", "Numbers 10 9 8 7 6 5 4 3 2 1"),
    ("a b c d e f g h", "a b c d"),
    ("a b c d", "a b c d e f g h"),
    ("ABC def GHI", "abc DEF ghi"),
    ("What is 2+2? It's 4.", "2 + 2 = 4"),
    ("URLs like https://keel.dev/docs?x=1 work", "URLs like https://keel.dev/docs work"),
    ("Tabs\tand\tspaces  here", "Tabs and spaces here"),
    ("trailing space.   ", "trailing space."),
    ("x", "x"),
    ("x", "y"),
    ("repeat repeat repeat repeat repeat", "repeat repeat"),
    ("1.5 million (1,500,000)", "1.5 million or 1,500,000"),
    ("The end.", "The end ."),
    ("[brackets] {braces} <angles>", "brackets braces angles"),
    ("K\u212a kelvin sign", "kk kelvin sign"),
]

_WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "ran",
    "on",
    "under",
    "mat",
    "rug",
    "quickly",
    "slowly",
    "Paris",
    "France",
    "capital",
    "is",
    "was",
    "model",
    "answer",
    "42",
    "3.14",
    "1,000",
    "-5",
    "e-mail",
    "don't",
    "it's",
    "U.S.",
    "Dr.",
    "(note)",
    "[x]",
    "{y}",
    "$5",
    "100%",
    "hello",
    "HELLO",
    "Hello",
    ",",
    ".",
    "!",
    "?",
    ";",
    ":",
    "-",
    "--",
    "'",
    '"',
    "/",
    "&",
    "&amp;",
    "é",
    "ü",
    "ß",
]


def _random_sentence(rng: random.Random) -> str:
    n = rng.choice([0, 1, 2, 3, 5, 8, 13, 21])
    words = [rng.choice(_WORDS) for _ in range(n)]
    if words and rng.random() < 0.3:
        # Repeats: a run of one word, which stresses n-gram clipping and the LCS.
        words += [words[-1]] * rng.randint(1, 4)
    joiner = rng.choice([" ", " ", " ", "  ", ""])
    return joiner.join(words)


def _random_pairs(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        reference = _random_sentence(rng)
        if rng.random() < 0.5 and reference:
            # A candidate that shares most of the reference: edits, not independent text.
            words = reference.split()
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(words) + 1)
                op = rng.choice(["insert", "delete", "swap"])
                if op == "insert" or not words:
                    words.insert(i, rng.choice(_WORDS))
                elif op == "delete":
                    words.pop(min(i, len(words) - 1))
                else:
                    j = rng.randrange(len(words))
                    k = rng.randrange(len(words))
                    words[j], words[k] = words[k], words[j]
            candidate = " ".join(words)
        else:
            candidate = _random_sentence(rng)
        pairs.append((reference, candidate))
    return pairs


PAIRS = HAND_WRITTEN + _random_pairs(80, seed=6)


def test_the_shared_sample_is_large_and_varied() -> None:
    assert len(PAIRS) >= 50
    assert any(r == "" or c == "" for r, c in PAIRS)
    assert any(r != r.lower() for r, _ in PAIRS)
    assert len({r for r, _ in PAIRS}) > 50


def test_rouge_l_equals_rouge_score_on_the_shared_sample() -> None:
    reference = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    for target, prediction in PAIRS:
        expected = reference.score(target, prediction)["rougeL"]
        got = rouge_l(target, prediction)
        assert got.precision == pytest.approx(expected.precision, abs=1e-12), (target, prediction)
        assert got.recall == pytest.approx(expected.recall, abs=1e-12), (target, prediction)
        assert got.fmeasure == pytest.approx(expected.fmeasure, abs=1e-12), (target, prediction)


def test_rouge_tokens_equal_rouge_scores_tokenizer() -> None:
    from rouge_score import tokenize

    for target, prediction in PAIRS:
        for text in (target, prediction):
            assert rouge_tokens(text) == tokenize.tokenize(text, None)


def test_sentence_bleu_equals_sacrebleu_on_the_shared_sample() -> None:
    for ref, hyp in PAIRS:
        expected = sacrebleu.sentence_bleu(hyp, [ref])
        got = sentence_bleu(hyp, [ref])
        assert got.score == pytest.approx(expected.score, abs=1e-9), (ref, hyp)
        assert got.bp == pytest.approx(expected.bp, abs=1e-12)
        assert (got.sys_len, got.ref_len) == (expected.sys_len, expected.ref_len)
        assert list(got.counts) == list(expected.counts)
        assert list(got.totals) == list(expected.totals)


def test_sentence_bleu_with_several_references_equals_sacrebleu() -> None:
    for i in range(0, len(PAIRS) - 2, 3):
        hyp = PAIRS[i][1]
        refs = [PAIRS[i][0], PAIRS[i + 1][0], PAIRS[i + 2][1]]
        assert sentence_bleu(hyp, refs).score == pytest.approx(
            sacrebleu.sentence_bleu(hyp, refs).score, abs=1e-9
        ), (hyp, refs)


@pytest.mark.parametrize("smooth_method", ["exp", "floor", "add-k", "none"])
@pytest.mark.parametrize("lowercase", [False, True])
def test_sentence_bleu_options_equal_sacrebleu(smooth_method: str, lowercase: bool) -> None:
    for ref, hyp in PAIRS[:60]:
        expected = sacrebleu.sentence_bleu(hyp, [ref], smooth_method=smooth_method, lowercase=lowercase)
        got = sentence_bleu(hyp, [ref], smooth_method=smooth_method, lowercase=lowercase)  # type: ignore[arg-type]
        assert got.score == pytest.approx(expected.score, abs=1e-9), (ref, hyp)


def test_corpus_bleu_equals_sacrebleu() -> None:
    hyps = [c for _, c in PAIRS]
    refs = [r for r, _ in PAIRS]
    expected = sacrebleu.corpus_bleu(hyps, [refs])
    got = corpus_bleu(hyps, [refs])
    assert got.score == pytest.approx(expected.score, abs=1e-9)
    assert got.score > 0
    # Two reference streams, the second with gaps (None: that segment has one reference).
    second: list[str | None] = [
        None if i % 4 == 0 else PAIRS[(i + 1) % len(PAIRS)][0] for i in range(len(PAIRS))
    ]
    expected2 = sacrebleu.corpus_bleu(hyps, [refs, second])
    got2 = corpus_bleu(hyps, [refs, second])
    assert got2.score == pytest.approx(expected2.score, abs=1e-9)
    # Effective order at corpus level too.
    expected3 = sacrebleu.corpus_bleu(hyps[:5], [refs[:5]], use_effective_order=True)
    assert corpus_bleu(hyps[:5], [refs[:5]], effective_order=True).score == pytest.approx(
        expected3.score, abs=1e-9
    )


def test_corpus_bleu_refuses_streams_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="2 segments for 3 hypotheses"):
        corpus_bleu(["a", "b", "c"], [["a", "b"]])


def test_tokenize_13a_equals_sacrebleu() -> None:
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    tokenizer = Tokenizer13a()
    for ref, hyp in PAIRS:
        for text in (ref, hyp):
            assert tokenize_13a(text) == tokenizer(text.rstrip()).split()


def test_identical_texts_score_one_and_disjoint_texts_zero() -> None:
    assert sentence_bleu("the cat sat on the mat", ["the cat sat on the mat"]).score == pytest.approx(100.0)
    assert sentence_bleu("dogs bark", ["the cat sat"]).score == 0.0
    assert rouge_l("the cat", "the cat").fmeasure == 1.0
    assert rouge_l("the cat", "a dog") == (0.0, 0.0, 0.0)


def test_levenshtein_agrees_with_the_table_on_random_strings() -> None:
    rng = random.Random(3)
    for _ in range(3000):
        a = "".join(rng.choice("abcé ") for _ in range(rng.randint(0, 15)))
        b = "".join(rng.choice("abcdé ") for _ in range(rng.randint(0, 15)))
        assert levenshtein_distance(a, b) == _levenshtein_table(a, b), (a, b)
    # Longer than a machine word: the bit vectors are big integers.
    a = "".join(rng.choice("acgt") for _ in range(300))
    b = "".join(rng.choice("acgt") for _ in range(250))
    assert levenshtein_distance(a, b) == _levenshtein_table(a, b)


def test_levenshtein_known_values() -> None:
    assert levenshtein_distance("kitten", "sitting") == 3
    assert levenshtein_distance("", "abc") == 3
    assert levenshtein_distance("abc", "") == 3
    assert levenshtein_distance("flaw", "lawn") == 2
    assert levenshtein_similarity("", "") == 1.0
    assert levenshtein_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert levenshtein_similarity("abc", "xyz") == 0.0


def test_lcs_agrees_with_the_table() -> None:
    def table(a: list[str], b: list[str]) -> int:
        t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                t[i][j] = t[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(t[i - 1][j], t[i][j - 1])
        return t[-1][-1]

    rng = random.Random(5)
    for _ in range(2000):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 14))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 14))]
        assert lcs_length(a, b) == table(a, b)
    long_a = [rng.choice("abcdefgh") for _ in range(200)]
    long_b = [rng.choice("abcdefgh") for _ in range(180)]
    assert lcs_length(long_a, long_b) == table(long_a, long_b)
