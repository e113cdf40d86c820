"""Drift tests for embeddings: maximum mean discrepancy and a domain classifier.

``mmd``: the (unbiased) squared MMD with an RBF kernel whose bandwidth is the median
pairwise distance, and a permutation p-value. ``domain_classifier``: L2-regularised
logistic regression told to separate reference from current vectors, scored by the
area under the ROC curve of its cross-validated predictions (0.5: indistinguishable);
drift when the AUC is above ``threshold`` and significantly above 0.5 (Mann–Whitney),
so a small sample's noisy AUC does not raise alarms. Its out-of-fold scores also rank
the current examples by how unlike the reference they are.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from keel.monitor._detectors import check_unit, detector
from keel.monitor._types import DataKind, DetectorResult, EmbeddingData, FloatArray


def _subsample(data: EmbeddingData, limit: int, rng: np.random.Generator) -> tuple[FloatArray, list[str]]:
    vectors = np.asarray(data.vectors, dtype=np.float64)
    ids = list(data.ids) if len(data.ids) == vectors.shape[0] else [""] * vectors.shape[0]
    if vectors.shape[0] <= limit:
        return vectors, ids
    keep = np.sort(rng.choice(vectors.shape[0], size=limit, replace=False))
    return vectors[keep], [ids[i] for i in keep]


def _squared_distances(z: FloatArray) -> FloatArray:
    norms = np.einsum("ij,ij->i", z, z)
    d2: FloatArray = norms[:, None] + norms[None, :] - 2.0 * (z @ z.T)
    np.maximum(d2, 0.0, out=d2)
    return d2


class MaximumMeanDiscrepancy:
    name = "mmd"
    kinds: tuple[DataKind, ...] = ("embedding",)

    def __init__(self, alpha: float, threshold: float | None, permutations: int, max_samples: int, seed: int):
        self.alpha = alpha
        self.threshold = threshold
        self.permutations = permutations
        self.max_samples = max_samples
        self.seed = seed

    def test(self, reference: EmbeddingData, current: EmbeddingData) -> DetectorResult:
        rng = np.random.default_rng(self.seed)
        x, _ = _subsample(reference, self.max_samples, rng)
        y, _ = _subsample(current, self.max_samples, rng)
        n, m = x.shape[0], y.shape[0]
        if n < 2 or m < 2:
            raise ValueError("mmd needs at least two vectors on each side")
        z = np.vstack([x, y])
        d2 = _squared_distances(z)
        off_diagonal = d2[~np.eye(n + m, dtype=bool)]
        bandwidth2 = float(np.median(off_diagonal)) or 1.0
        kernel = np.exp(-d2 / bandwidth2)
        score = _unbiased_mmd2(kernel, n, m)
        # Permutation test on the (biased) statistic w'Kw, all permutations at once.
        weights = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
        observed = float(weights @ kernel @ weights)
        shuffled = np.stack([rng.permutation(weights) for _ in range(self.permutations)], axis=1)
        null = np.einsum("ij,ij->j", kernel @ shuffled, shuffled)
        p_value = float((1 + np.sum(null >= observed - 1e-12)) / (1 + self.permutations))
        if self.threshold is not None:
            drifted, threshold, compare = score > self.threshold, self.threshold, "score"
        else:
            drifted, threshold, compare = p_value < self.alpha, self.alpha, "p_value"
        return DetectorResult(
            self.name,
            score,
            p_value,
            threshold,
            drifted,
            {"compare": compare, "bandwidth": float(np.sqrt(bandwidth2)), "n_reference": n, "n_current": m},
        )


def _unbiased_mmd2(kernel: FloatArray, n: int, m: int) -> float:
    kxx = kernel[:n, :n]
    kyy = kernel[n:, n:]
    kxy = kernel[:n, n:]
    xx = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(xx + yy - 2.0 * kxy.mean())


def _fit_logistic(x: FloatArray, y: FloatArray, l2: float) -> FloatArray:
    """Weights (bias last) minimising the mean log loss plus ``l2``/2·|w|²."""
    design = np.hstack([x, np.ones((x.shape[0], 1))])
    sign = 2.0 * y - 1.0

    def loss(w: FloatArray) -> tuple[float, FloatArray]:
        margin = sign * (design @ w)
        value = np.logaddexp(0.0, -margin).mean() + 0.5 * l2 * float(w[:-1] @ w[:-1])
        grad_margin = -sign * (1.0 / (1.0 + np.exp(margin))) / x.shape[0]
        grad = design.T @ grad_margin
        grad[:-1] += l2 * w[:-1]
        return float(value), grad

    found = optimize.minimize(loss, np.zeros(design.shape[1]), jac=True, method="L-BFGS-B")
    return np.asarray(found.x, dtype=np.float64)


class DomainClassifier:
    name = "domain_classifier"
    kinds: tuple[DataKind, ...] = ("embedding",)

    def __init__(self, threshold: float, alpha: float, folds: int, l2: float, max_samples: int, seed: int):
        self.threshold = threshold
        self.alpha = alpha
        self.folds = folds
        self.l2 = l2
        self.max_samples = max_samples
        self.seed = seed

    def test(self, reference: EmbeddingData, current: EmbeddingData) -> DetectorResult:
        rng = np.random.default_rng(self.seed)
        # Balanced classes: an AUC means the same whatever the two windows' sizes.
        size = min(reference.n, current.n, self.max_samples)
        if size < self.folds:
            raise ValueError(f"domain_classifier needs at least {self.folds} vectors on each side")
        x, _ = _subsample(reference, size, rng)
        y, y_ids = _subsample(current, size, rng)
        z = np.vstack([x, y])
        z = z - z.mean(axis=0)
        labels = np.concatenate([np.zeros(size), np.ones(size)])
        scores = np.empty(2 * size)
        # Stratified folds: each holds the same share of both windows.
        fold_of = np.concatenate([rng.permutation(size) % self.folds, rng.permutation(size) % self.folds])
        for fold in range(self.folds):
            test = fold_of == fold
            w = _fit_logistic(z[~test], labels[~test], self.l2)
            scores[test] = z[test] @ w[:-1] + w[-1]
        cur_scores, ref_scores = scores[size:], scores[:size]
        found = stats.mannwhitneyu(cur_scores, ref_scores, alternative="greater")
        auc = float(found.statistic) / (size * size)
        p_value = float(found.pvalue)
        order = np.argsort(-cur_scores)[:5]
        examples = [
            {"id": y_ids[i], "score": float(1.0 / (1.0 + np.exp(-cur_scores[i])))} for i in order if y_ids[i]
        ]
        return DetectorResult(
            self.name,
            auc,
            p_value,
            self.threshold,
            auc > self.threshold and p_value < self.alpha,
            {"compare": "score", "examples": examples, "n_per_side": size},
        )


@detector("mmd")
def mmd(
    alpha: float = 0.05,
    threshold: float | None = None,
    permutations: int = 200,
    max_samples: int = 500,
    seed: int = 0,
) -> MaximumMeanDiscrepancy:
    """Maximum mean discrepancy (RBF kernel); drift when the permutation p < alpha, or
    when MMD² is above ``threshold`` if one is set."""
    check_unit("alpha", alpha)
    if permutations < 10:
        raise ValueError("mmd needs at least 10 permutations")
    return MaximumMeanDiscrepancy(alpha, threshold, permutations, max_samples, seed)


@detector("domain_classifier")
def domain_classifier(
    threshold: float = 0.55,
    alpha: float = 0.05,
    folds: int = 5,
    l2: float = 0.01,
    max_samples: int = 1000,
    seed: int = 0,
) -> DomainClassifier:
    """A classifier that tells current from reference vectors: drift when its
    cross-validated ROC AUC is above ``threshold`` (and significant at ``alpha``)."""
    check_unit("alpha", alpha)
    if folds < 2:
        raise ValueError("domain_classifier needs at least 2 folds")
    return DomainClassifier(threshold, alpha, folds, l2, max_samples, seed)
