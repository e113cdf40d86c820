"""Train the injection classifier: ``python -m keel.guards._train [--seed N]``.

Reads ``injection.{train,dev,test}.jsonl``, embeds every text with all-MiniLM-L6-v2
(the same quantised encoder inference uses), fits an L2-regularised logistic
regression with numpy (Newton's method, classes weighted to balance), picks the
regularisation on the dev split, calibrates the probabilities on dev (Platt scaling:
one scale and one shift of the logit), and reports the test split: precision, recall,
false-positive rates, reliability bins and expected calibration error. Writes the
weights and those numbers to ``keel/data/guards/injection_classifier.json``.
Deterministic: Newton's method has no randomness, and the data is fixed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from keel.guards._classifier import DEFAULT_WEIGHTS, FEATURE_NAMES, char_features, shared_embedder
from keel.guards._eval import load_split
from keel.guards._injection_rules import evaluate_rules

Array = NDArray[np.float64]
POSITIVE = {"injection", "jailbreak"}
# The injection scanner's default rule threshold.
RULE_THRESHOLD = 0.5


def _design(records: list[dict[str, Any]]) -> tuple[Array, Array, Array]:
    texts = [r["text"] for r in records]
    embedder = shared_embedder(True)
    embeddings = np.asarray(embedder.embed(texts), dtype=np.float64)
    features = np.asarray([char_features(t, evaluate_rules(t)) for t in texts], dtype=np.float64)
    labels = np.asarray([1.0 if r["label"] in POSITIVE else 0.0 for r in records])
    return embeddings, features, labels


def _sigmoid(z: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def fit_logistic(x: Array, y: Array, l2: float, sample_weight: Array, iterations: int = 30) -> Array:
    """Weights (last entry: bias) of a weighted L2 logistic regression, by Newton's method."""
    xb = np.hstack([x, np.ones((x.shape[0], 1))])
    w = np.zeros(xb.shape[1])
    penalty = np.full(xb.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = _sigmoid(xb @ w)
        gradient = xb.T @ (sample_weight * (p - y)) + penalty * w
        hessian = (xb * (sample_weight * p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.max(np.abs(step)) < 1e-7:
            break
    return w


def _nll(p: Array, y: Array) -> float:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def reliability(p: Array, y: Array, bins: int = 10) -> tuple[list[dict[str, Any]], float]:
    """Reliability bins (mean predicted vs observed rate) and the expected calibration error."""
    rows = []
    ece = 0.0
    edges = np.linspace(0, 1, bins + 1)
    for i in range(bins):
        mask = (p >= edges[i]) & ((p < edges[i + 1]) if i < bins - 1 else (p <= edges[i + 1]))
        if not mask.any():
            continue
        confidence, observed = float(p[mask].mean()), float(y[mask].mean())
        ece += mask.mean() * abs(confidence - observed)
        rows.append(
            {
                "bin": f"{edges[i]:.1f}-{edges[i + 1]:.1f}",
                "count": int(mask.sum()),
                "mean_predicted": round(confidence, 4),
                "observed": round(observed, 4),
            }
        )
    return rows, round(float(ece), 4)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    args = parser.parse_args()
    started = time.monotonic()
    splits = {name: load_split("injection", name) for name in ("train", "dev", "test")}
    designs = {name: _design(records) for name, records in splits.items()}
    print(f"embedded {sum(len(r) for r in splits.values())} texts in {time.monotonic() - started:.0f}s")
    e_train, f_train, y_train = designs["train"]
    mean, std = f_train.mean(axis=0), f_train.std(axis=0)
    std[std < 1e-6] = 1.0

    def matrix(name: str) -> Array:
        e, f, _ = designs[name]
        return np.hstack([e, (f - mean) / std])

    x_train, x_dev = matrix("train"), matrix("dev")
    y_dev = designs["dev"][2]
    positives = y_train.sum()
    weight = np.where(
        y_train == 1, len(y_train) / (2 * positives), len(y_train) / (2 * (len(y_train) - positives))
    )
    best: tuple[float, float, Array] | None = None
    for l2 in (0.01, 0.1, 1.0, 10.0):
        w = fit_logistic(x_train, y_train, l2, weight)
        loss = _nll(_sigmoid(np.hstack([x_dev, np.ones((len(x_dev), 1))]) @ w), y_dev)
        print(f"l2={l2:<5} dev log-loss {loss:.4f}")
        if best is None or loss < best[0]:
            best = (loss, l2, w)
    assert best is not None
    _, l2, w = best
    # Platt scaling on dev: p = sigmoid(a * z + b).
    z_dev = np.hstack([x_dev, np.ones((len(x_dev), 1))]) @ w
    platt = fit_logistic(z_dev[:, None], y_dev, 0.0, np.ones_like(y_dev))
    a, b = float(platt[0]), float(platt[1])
    temperature = 1.0 / a
    bias = float(w[-1]) + b / a
    dims = e_train.shape[1]
    weights = {
        "model": "all-MiniLM-L6-v2",
        "max_tokens": 256,
        "quantized": shared_embedder(True).quantized,
        "features": list(FEATURE_NAMES),
        "mean": [round(float(v), 6) for v in mean],
        "std": [round(float(v), 6) for v in std],
        "w_embedding": [round(float(v), 6) for v in w[:dims]],
        "w_features": [round(float(v), 6) for v in w[dims:-1]],
        "bias": round(bias, 6),
        "temperature": round(temperature, 6),
        "l2": l2,
        "trained_on": {name: len(records) for name, records in splits.items()},
    }
    # The decision threshold, chosen on dev (never on test): the lowest at which no benign
    # dev text is flagged by the classifier where the rules alone would not flag it.
    z_cal = z_dev * a + b
    p_dev = _sigmoid(z_cal)
    rules_dev = np.asarray([evaluate_rules(r["text"]).score for r in splits["dev"]])
    benign_dev = y_dev == 0
    threshold = 0.99
    for candidate in np.arange(0.5, 0.995, 0.05):
        flagged = (p_dev >= candidate) & (rules_dev < RULE_THRESHOLD)
        if not flagged[benign_dev].any():
            threshold = round(float(candidate), 2)
            break
    weights["threshold"] = threshold
    print(f"threshold {threshold} (dev)")
    # Test: the calibrated probability, as inference computes it, and the scanner's
    # decision (rules at their threshold, or the classifier at its own).
    x_test, y_test = matrix("test"), designs["test"][2]
    coefficients = np.round(w[:-1], 6)
    z_test = (x_test @ coefficients + bias) / temperature
    p_test = _sigmoid(z_test)
    bins, ece = reliability(p_test, y_test)
    hard = np.asarray([bool(r.get("hard")) for r in splits["test"]])
    rules_test = np.asarray([evaluate_rules(r["text"]).score for r in splits["test"]])
    alone = p_test >= threshold
    predicted = alone | (rules_test >= RULE_THRESHOLD)
    weights["metrics"] = {
        "test_classifier_alone_recall": round(float(alone[y_test == 1].mean()), 4),
        "test_classifier_alone_fpr": round(float(alone[y_test == 0].mean()), 4),
        "test_recall": round(float(predicted[y_test == 1].mean()), 4),
        "test_fpr": round(float(predicted[y_test == 0].mean()), 4),
        "test_fpr_lookalikes": round(float(predicted[(y_test == 0) & hard].mean()), 4),
        "test_log_loss": round(_nll(p_test, y_test), 4),
        "test_ece": ece,
        "test_reliability": bins,
    }
    args.out.write_text(json.dumps(weights, indent=None, separators=(",", ":")) + "\n", "utf-8")
    print(json.dumps(weights["metrics"], indent=2))
    print(f"wrote {args.out} in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
