"""The report's figures, one PNG each from the run's metrics records: macro F per round,
the training set size by class (paper Fig. 4), per-class precision/recall/F (Figs. 5-7),
train vs test accuracy (Fig. 8), the chosen round's confusion matrix, the expected score's
SRCC and PLCC per round. With several folds each curve is the mean over folds with a band
of one standard deviation. `report.write_report` calls them; `report_text` writes the words.
"""

import numpy as np

from rsrl_jax.analysis.figures import fit_y, legend_below, new_figure
from rsrl_jax.analysis.report_verdict import folds_by_round, listed
from rsrl_jax.metrics import aesthetic, fold_stats

FIGURES = {
    "macro_f1": "macro_f1.png",
    "training_set_size": "training_set_size.png",
    "per_class_val": "per_class_val.png",
    "per_class_test": "per_class_test.png",
    "accuracy": "accuracy.png",
    "confusion_matrix": "confusion_matrix.png",
    "aesthetic": "aesthetic.png",
}


def _by_fold_round(records, value) -> np.ndarray:
    """[folds, rounds] array of value(record); NaN where a fold lacks a round."""
    folds = sorted({r["fold"] for r in records})
    rounds = sorted({r["round"] for r in records})
    out = np.full((len(folds), len(rounds)), np.nan)
    for r in records:
        out[folds.index(r["fold"]), rounds.index(r["round"])] = value(r)
    return out


def _over_folds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over axis 0 of [folds, rounds], NaN left out; NaN where a round has no
    value in any fold (no warning, unlike np.nanmean)."""
    there = ~np.isnan(values)
    n = there.sum(axis=0)
    filled = np.where(there, values, 0.0)
    mean = np.divide(filled.sum(0), n, out=np.full(n.shape, np.nan), where=n > 0)
    square = np.where(there, (values - mean) ** 2, 0.0).sum(0)
    return mean, np.sqrt(np.divide(square, n, out=np.full(n.shape, np.nan), where=n > 0))


def _band(ax, rounds, values, label, offset=0.0, marker="o", **kw):
    """Mean over folds with a +-1 std band (no band for a single fold), drawn `offset` rounds
    to the right (the values themselves are never moved)."""
    mean, std = _over_folds(values)
    x = np.asarray(rounds, float) + offset
    (line,) = ax.plot(x, mean, marker=marker, markersize=3, label=label, **kw)
    if values.shape[0] > 1:
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    return line


def plot_macro_f1(records, chosen: dict[int, int], path):
    """Validation and test macro F per round; a dashed line at each chosen round and a
    dotted one at round 1's test macro F, the verdict's baseline."""
    rounds = sorted({r["round"] for r in records})
    fig = new_figure(7, 4)
    ax = fig.subplots()
    for part, label in (("val", "validation"), ("test", "test")):
        _band(ax, rounds, _by_fold_round(records, lambda r: r[part]["macro_f1"]), label)  # noqa: B023
    round1 = _by_fold_round([r for r in records if r["round"] == rounds[0]], _test_macro_f1)
    ax.axhline(float(np.nanmean(round1)), color="grey", linestyle=":", label="round 1, test")
    by_round = folds_by_round(chosen)
    for round_, folds in by_round.items():
        ax.axvline(round_, color="k", linestyle="--", alpha=0.4 + 0.6 * len(folds) / len(chosen))
        if len(by_round) > 1:  # folds chose differently: say which chose what
            ax.text(
                round_,
                0.98,
                f" fold{'s' if len(folds) > 1 else ''} {listed(folds)}",
                rotation=90,
                ha="right",
                va="top",
                fontsize=7,
                transform=ax.get_xaxis_transform(),
            )
    label = (
        f"chosen round {next(iter(by_round))}"
        if len(by_round) == 1
        else "round chosen on validation"
    )
    ax.plot([], [], color="k", linestyle="--", label=label)
    ax.set(xlabel="round", ylabel="macro F", title="Macro F per round")
    fit_y(ax, 0, 1)
    ax.set_xticks(rounds)
    legend_below(fig, ax)
    fig.savefig(path, dpi=100)
    return fig


def _test_macro_f1(record):
    return record["test"]["macro_f1"]


def plot_training_set_size(records, class_scores, path):
    rounds = sorted({r["round"] for r in records})
    fig = new_figure(7, 4)
    ax = fig.subplots()
    bottom = np.zeros(len(rounds))
    for score in class_scores:
        counts = np.nanmean(
            _by_fold_round(records, lambda r, s=str(score): r["class_counts"][s]), 0
        )
        ax.bar(rounds, counts, bottom=bottom, label=f"score {score}")
        bottom += counts
    totals = _by_fold_round(records, lambda r: r["train_size"])
    if totals.shape[0] > 1:
        ax.errorbar(rounds, bottom, yerr=np.nanstd(totals, 0), fmt="none", color="k", capsize=3)
    ax.set(xlabel="round", ylabel="training photos", title="Training set size per round")
    ax.set_xticks(rounds)
    legend_below(fig, ax, fontsize=7, ncol=min(len(class_scores), 6))
    fig.savefig(path, dpi=100)


CLASS_OFFSET = 0.04  # rounds between neighbouring scores' curves in the per-class figures


MARKERS = "osv^DP*X<>ph"


def plot_per_class(records, class_scores, part, path):
    """Per-class P/R/F per round. Each score's curve is shifted right by CLASS_OFFSET rounds
    from its neighbour's and has its own marker: classes that stay at 0 (or 1) would otherwise
    hide under one line. The values are drawn as they are (0 stays on 0)."""
    rounds = sorted({r["round"] for r in records})
    drawn = [
        str(score)
        for score in class_scores
        # no true sample of this score in any fold (e.g. score 9): nothing to draw
        if np.nansum(
            _by_fold_round(records, lambda r, k=str(score): r[part]["per_class"][k]["support"] > 0)
        )
    ]
    offsets = (np.arange(len(drawn)) - (len(drawn) - 1) / 2) * CLASS_OFFSET
    fig = new_figure(14, 4)
    axes = fig.subplots(1, 3, sharey=True)
    for ax, name in zip(axes, fold_stats.PER_CLASS, strict=True):
        for i, key in enumerate(drawn):
            values = _by_fold_round(records, lambda r, k=key: r[part]["per_class"][k][name])  # noqa: B023
            marker = MARKERS[i % len(MARKERS)]
            _band(ax, rounds, values, f"score {key}", offset=offsets[i], marker=marker)
        ax.set(xlabel="round", title=f"{part} {name}")
        ax.set_xticks(rounds)
    fit_y(list(axes), 0, 1)
    fig.suptitle(
        f"curves shifted by {CLASS_OFFSET} round per score so that equal values stay visible",
        fontsize=8,
    )
    legend_below(fig, axes[0], fontsize=7, ncol=min(len(drawn), 10))
    fig.savefig(path, dpi=100)
    return fig


def plot_accuracy(records, path):
    rounds = sorted({r["round"] for r in records})
    fig = new_figure(7, 4)
    ax = fig.subplots()
    for part, label in (
        ("train_kept", "train (the round's training set)"),
        ("train", "train (all of D)"),
        ("val", "validation"),
        ("test", "test"),
    ):
        _band(ax, rounds, _by_fold_round(records, lambda r: r[part]["accuracy"]), label)  # noqa: B023
    ax.set(xlabel="round", ylabel="accuracy", title="Accuracy per round")
    fit_y(ax, 0, 1)
    ax.set_xticks(rounds)
    legend_below(fig, ax)
    fig.savefig(path, dpi=100)


def _or_nan(value) -> float:
    return np.nan if value is None else value


def plot_aesthetic(records, path):
    """SRCC and PLCC of the expected score per round, for D, validation and test (a gap
    where a correlation is undefined, or for records made before they were measured)."""
    rounds = sorted({r["round"] for r in records})
    fig = new_figure(11, 4)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, name in zip(axes, ("srcc", "plcc"), strict=True):
        for part, label in (("train", "train (all of D)"), ("val", "validation"), ("test", "test")):
            values = _by_fold_round(records, lambda r: _or_nan(r[part].get(name)))  # noqa: B023
            _band(ax, rounds, values, label)
        ax.set(xlabel="round", title=f"{aesthetic.TITLES[name]} per round")
        ax.set_xticks(rounds)
    limits = fit_y(list(axes), -1, 1)
    if limits is not None and limits[0] < 0 < limits[1]:  # no correlation: only when in view
        for ax in axes:
            ax.axhline(0.0, color="grey", linewidth=0.5)
    axes[0].set_ylabel("correlation with the true score")
    fig.suptitle("expected score (softmax-weighted mean of the class scores)", fontsize=8)
    legend_below(fig, axes[0])
    fig.savefig(path, dpi=100)
    return fig


def plot_confusion(matrix: np.ndarray, class_scores, title, path):
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    fig = new_figure(5.5, 5)
    ax = fig.subplots()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(matrix):
        color = "white" if share[i, j] > 0.6 else "black"
        ax.text(j, i, str(n), ha="center", va="center", fontsize=8, color=color)
    ticks = range(len(class_scores))
    ax.set_xticks(ticks, [str(s) for s in class_scores])
    ax.set_yticks(ticks, [str(s) for s in class_scores])
    ax.set(xlabel="predicted score", ylabel="true score", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true score's photos")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
