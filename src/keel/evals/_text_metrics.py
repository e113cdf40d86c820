"""Text similarity metrics in pure Python: Levenshtein distance, ROUGE-L and BLEU.

ROUGE-L reproduces ``rouge_score.rouge_scorer.RougeScorer(["rougeL"])`` (no stemmer)
and BLEU reproduces ``sacrebleu.sentence_bleu`` / ``sacrebleu.corpus_bleu`` with their
defaults (13a tokenizer, exponential smoothing, effective order at sentence level), to
the last bit: the same tokens, the same integer statistics and the same floating-point
operations in the same order. Those packages stay out of the runtime dependencies;
the tests compare with them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

# --- Levenshtein ----------------------------------------------------------------


def levenshtein_distance(a: str, b: str) -> int:
    """The number of single-character insertions, deletions and substitutions that
    turn ``a`` into ``b``."""
    if a == b:
        return 0
    if not a or not b:
        return len(a) or len(b)
    # Myers' bit-vector algorithm (Hyyrö's formulation for the global distance): one
    # column of the edit-distance table per character of ``b``, held as two bit
    # vectors of vertical deltas in Python integers. Exact, and linear in len(b).
    m = len(a)
    full = (1 << m) - 1
    last = 1 << (m - 1)
    peq: dict[str, int] = {}
    for i, char in enumerate(a):
        peq[char] = peq.get(char, 0) | (1 << i)
    pv, mv, score = full, 0, m
    for char in b:
        eq = peq.get(char, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & full)
        mh = pv & xh
        if ph & last:
            score += 1
        elif mh & last:
            score -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = mh | (~(xv | ph) & full)
        mv = ph & xv
    return score


def _levenshtein_table(a: str, b: str) -> int:
    # The textbook dynamic programme; the tests check the bit-vector version with it.
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def levenshtein_similarity(a: str, b: str) -> float:
    """``1 - distance / max(len(a), len(b))``: 1 for equal texts (two empty ones too),
    0 for texts with nothing in common."""
    longest = max(len(a), len(b))
    if longest == 0:
        return 1.0
    return 1.0 - levenshtein_distance(a, b) / longest


# --- ROUGE-L --------------------------------------------------------------------

_ROUGE_TOKEN = re.compile(r"[a-z0-9]+")


def rouge_tokens(text: str) -> list[str]:
    """rouge-score's default tokenisation: lowercase, every run of characters other
    than ASCII letters and digits is a separator."""
    # rouge-score lowercases first, then replaces [^a-z0-9]+ by spaces and keeps the
    # [a-z0-9]+ tokens: the same as finding those runs in the lowered text.
    return _ROUGE_TOKEN.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences."""
    if not a or not b:
        return 0
    # Bit-parallel LCS (Allison-Dix / Hyyrö): one big-integer step per token of ``b``
    # instead of a row of the dynamic-programming table. Exact integer arithmetic, so
    # the length equals the table's.
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


class RougeL(NamedTuple):
    precision: float
    recall: float
    fmeasure: float


def rouge_l(reference: str, candidate: str) -> RougeL:
    """ROUGE-L of ``candidate`` against ``reference``, as rouge-score computes it:
    precision = LCS / candidate tokens, recall = LCS / reference tokens, F1; all 0 when
    either text has no tokens."""
    ref = rouge_tokens(reference)
    cand = rouge_tokens(candidate)
    if not ref or not cand:
        return RougeL(0.0, 0.0, 0.0)
    lcs = lcs_length(ref, cand)
    precision = lcs / len(cand)
    recall = lcs / len(ref)
    fmeasure = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return RougeL(precision, recall, fmeasure)


# --- BLEU -----------------------------------------------------------------------

MAX_ORDER = 4

# mteval-v13a's tokenisation as sacrebleu writes it (tokenizer_re.TokenizerRegexp).
_TOKENIZE_13A = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)

Smoothing = Literal["exp", "floor", "add-k", "none"]
_SMOOTH_DEFAULTS: dict[str, float | None] = {"none": None, "floor": 0.1, "add-k": 1, "exp": None}


def tokenize_13a(line: str) -> list[str]:
    """sacrebleu's ``13a`` tokenizer (the line is right-stripped first, as sacrebleu's
    BLEU does)."""
    line = line.rstrip()
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, replacement in _TOKENIZE_13A:
        line = pattern.sub(replacement, line)
    return line.split()


def _ngrams(tokens: list[str], max_order: int) -> Counter[tuple[str, ...]]:
    grams: Counter[tuple[str, ...]] = Counter()
    for n in range(1, max_order + 1):
        for i in range(len(tokens) - n + 1):
            grams[tuple(tokens[i : i + n])] += 1
    return grams


@dataclass(frozen=True, slots=True)
class Bleu:
    """A BLEU score on sacrebleu's 0..100 scale with its sufficient statistics."""

    score: float
    counts: tuple[float, ...]
    totals: tuple[float, ...]
    precisions: tuple[float, ...]
    bp: float
    sys_len: int
    ref_len: int


def _segment_stats(hypothesis: str, references: Sequence[str], lowercase: bool, max_order: int) -> list[int]:
    def prepare(text: str) -> list[str]:
        return tokenize_13a(text.lower() if lowercase else text)

    ref_grams: Counter[tuple[str, ...]] | None = None
    ref_lens: list[int] = []
    for reference in references:
        tokens = prepare(reference)
        grams = _ngrams(tokens, max_order)
        ref_lens.append(len(tokens))
        if ref_grams is None:
            ref_grams = grams
        else:
            for gram, count in grams.items():
                ref_grams[gram] = max(ref_grams[gram], count)
    hyp = prepare(hypothesis)
    hyp_len = len(hyp)
    # The closest reference length, the shorter one on a tie.
    ref_len = min(ref_lens, key=lambda length: (abs(hyp_len - length), length)) if ref_lens else -1
    correct = [0] * max_order
    total = [0] * max_order
    for gram, count in _ngrams(hyp, max_order).items():
        total[len(gram) - 1] += count
        if ref_grams is not None and gram in ref_grams:
            correct[len(gram) - 1] += min(count, ref_grams[gram])
    return [hyp_len, ref_len, *correct, *total]


def _log(value: float) -> float:
    # sacrebleu floors log(0) at a large negative number instead of -inf.
    return -9999999999 if value == 0.0 else math.log(value)


def _compute_bleu(
    stats: list[int],
    smooth_method: Smoothing,
    smooth_value: float | None,
    effective_order: bool,
    max_order: int,
) -> Bleu:
    sys_len, ref_len = stats[0], stats[1]
    correct: list[float] = list(stats[2 : 2 + max_order])
    total: list[float] = list(stats[2 + max_order :])
    if smooth_value is None:
        smooth_value = _SMOOTH_DEFAULTS[smooth_method]
    bp = 1.0
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    precisions = [0.0] * max_order
    if not any(correct):
        return Bleu(0.0, tuple(correct), tuple(total), tuple(precisions), bp, sys_len, ref_len)
    smooth_mteval = 1.0
    eff_order = max_order
    for n in range(1, max_order + 1):
        if smooth_method == "add-k" and n > 1:
            assert smooth_value is not None
            correct[n - 1] += smooth_value
            total[n - 1] += smooth_value
        if total[n - 1] == 0:
            break
        if effective_order:
            eff_order = n
        if correct[n - 1] == 0:
            if smooth_method == "exp":
                smooth_mteval *= 2
                precisions[n - 1] = 100.0 / (smooth_mteval * total[n - 1])
            elif smooth_method == "floor":
                assert smooth_value is not None
                precisions[n - 1] = 100.0 * smooth_value / total[n - 1]
        else:
            precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    score = bp * math.exp(sum([_log(p) for p in precisions[:eff_order]]) / eff_order)
    return Bleu(score, tuple(correct), tuple(total), tuple(precisions), bp, sys_len, ref_len)


def sentence_bleu(
    hypothesis: str,
    references: Sequence[str],
    *,
    smooth_method: Smoothing = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
    effective_order: bool = True,
    max_order: int = MAX_ORDER,
) -> Bleu:
    """BLEU of one hypothesis against one or more references
    (``sacrebleu.sentence_bleu``'s defaults)."""
    stats = _segment_stats(hypothesis, references, lowercase, max_order)
    return _compute_bleu(stats, smooth_method, smooth_value, effective_order, max_order)


def corpus_bleu(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    smooth_method: Smoothing = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
    effective_order: bool = False,
    max_order: int = MAX_ORDER,
) -> Bleu:
    """Corpus BLEU (``sacrebleu.corpus_bleu``'s defaults). As in sacrebleu,
    ``references`` is a list of reference *streams*, each parallel to ``hypotheses``;
    a ``None`` in a stream means that segment has one reference fewer."""
    streams = [list(stream) for stream in references]
    for stream in streams:
        if len(stream) != len(hypotheses):
            raise ValueError(
                f"a reference stream has {len(stream)} segments for {len(hypotheses)} hypotheses"
            )
    totals = [0] * (2 + 2 * max_order)
    for i, hypothesis in enumerate(hypotheses):
        refs = [stream[i] for stream in streams if stream[i] is not None]
        for k, value in enumerate(_segment_stats(hypothesis, refs, lowercase, max_order)):
            totals[k] += value
    return _compute_bleu(totals, smooth_method, smooth_value, effective_order, max_order)
