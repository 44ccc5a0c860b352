"""The aesthetic figures of a score classifier: its expected score against the true score.

The network is an N-score classifier. Its *expected score* for a photo is the
probability-weighted mean of the class scores, sum_c p_c * score_c, with p the SOFTMAX of
the network's logits (the classification output `predict` prints; not RSRL's sigmoid
likelihoods): NIMA's mean score (Talebi & Milanfar 2018). Against each photo's true score
(its class's score in the data: a folder list's integer score, AVA's rounded mean vote, a
bin index with `data.ava_bins`):

- `srcc`, `plcc`: Spearman's rank and Pearson's linear correlation (`scipy.stats.spearmanr`,
  `scipy.stats.pearsonr`; tied scores share their mean rank), the figures NIMA and the AVA
  literature report;
- `mae`, `rmse`: mean absolute and root mean squared error, in score units;
- `binary_accuracy`: the share of photos put on the right side of the threshold t
  (`eval.good_threshold`): a photo is good when its score is above t, the true score for
  the truth and the expected score for the prediction (AVA's convention, Murray et al.
  2012: mean score > 5 is good).

Undefined figures are None (JSON null), never NaN, so `metrics.jsonl` stays strict JSON: a
correlation when either side is constant (e.g. a network that gives every photo the same
expected score, or a split of one score) or has fewer than 2 photos; every figure of an
empty split.
"""

import math

import numpy as np
from scipy import special, stats

FIGURES = ("srcc", "plcc", "mae", "rmse", "binary_accuracy")
TITLES = {
    "srcc": "SRCC",
    "plcc": "PLCC",
    "mae": "MAE",
    "rmse": "RMSE",
    "binary_accuracy": "binary acc.",
}


def probabilities(logits) -> np.ndarray:
    """[..., C] float64 softmax of `logits` [..., C] over the last axis (scipy.special)."""
    return special.softmax(np.asarray(logits, np.float64), axis=-1)


def expected_scores(logits, class_scores) -> np.ndarray:
    """[N] float64 expected score of each row of `logits` [N, C]: softmax-weighted mean of
    `class_scores` [C] (score units)."""
    return probabilities(logits) @ np.asarray(class_scores, np.float64)


def correlation(kind: str, x, y) -> float | None:
    """Spearman's (`kind='srcc'`) or Pearson's (`'plcc'`) correlation of x and y [N]; None
    when undefined: N < 2, or x or y constant."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    test = {"srcc": stats.spearmanr, "plcc": stats.pearsonr}[kind]
    value = float(test(x, y).statistic)
    return value if math.isfinite(value) else None


def aesthetic_report(true_scores, predicted_scores, good_threshold: float) -> dict:
    """{srcc, plcc, mae, rmse, binary_accuracy} of `predicted_scores` [N] (expected scores)
    against `true_scores` [N]; see the module's docstring for each figure and for None."""
    true = np.asarray(true_scores, np.float64)
    pred = np.asarray(predicted_scores, np.float64)
    if true.shape != pred.shape or true.ndim != 1:
        raise ValueError(f"true scores {true.shape} and predictions {pred.shape}: need [N] each")
    if true.size == 0:
        return dict.fromkeys(FIGURES)
    error = pred - true
    return {
        "srcc": correlation("srcc", pred, true),
        "plcc": correlation("plcc", pred, true),
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "binary_accuracy": float(np.mean((true > good_threshold) == (pred > good_threshold))),
    }


def figures(part: dict) -> dict:
    """The aesthetic figures of one split of a `metrics.jsonl` record; None for each one a
    record made before they were measured lacks."""
    return {name: part.get(name) for name in FIGURES}
