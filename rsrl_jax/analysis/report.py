"""The run's report: the paper's figures per round, the chosen round's table, report.md.

  python -m rsrl_jax.report --workdir=DIR

rebuilds `DIR/report/` from `metrics.jsonl` without training. report.md opens with a
verdict in words: the chosen round against round 1 on test, and whether the difference is
larger than the folds' spread; then how the round was chosen and what that choice missed
on test. Figures: macro F per round (validation and test), the training set size per round
stacked by class (paper Fig. 4), per-class precision/recall/F per round for validation and
test (Figs. 5-7), train vs test accuracy (Fig. 8), the chosen round's confusion matrix, the
SRCC and PLCC of the expected score per round (`aesthetic`; the rounds table and one line
give them too); on synthetic data the mislabelled share of what each selection dropped and kept
(`selection_truth.plot`, shown in the Selection section).
With several folds each curve is the mean over folds with a band of one standard deviation.
"""

import glob
import json
import os
import shutil

import numpy as np
from absl import logging

from rsrl_jax import errors
from rsrl_jax.analysis import aesthetic, fold_stats, selection_report, selection_truth
from rsrl_jax.analysis.figures import fit_y, new_figure
from rsrl_jax.data import inputs
from rsrl_jax.files import write_atomic
from rsrl_jax.run import completeness

LEVEL_BELOW = 0.01  # a mean test macro F difference smaller than this is "about level"

FIGURES = {
    "macro_f1": "macro_f1.png",
    "training_set_size": "training_set_size.png",
    "per_class_val": "per_class_val.png",
    "per_class_test": "per_class_test.png",
    "accuracy": "accuracy.png",
    "confusion_matrix": "confusion_matrix.png",
    "aesthetic": "aesthetic.png",
}


def read_records(workdir: str) -> list[dict]:
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise errors.NotFound(f"{path} not found: is {workdir} the workdir of a run?")
    records = []
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise errors.DataError(
                    f"{path} line {number}: not a whole JSON record ({e.msg}); run the run's "
                    "command again: a resume rebuilds metrics.jsonl from its checkpoints"
                ) from None
    return records


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
    by_round = _folds_by_round(chosen)
    for round_, folds in by_round.items():
        ax.axvline(round_, color="k", linestyle="--", alpha=0.4 + 0.6 * len(folds) / len(chosen))
        if len(by_round) > 1:  # folds chose differently: say which chose what
            ax.text(
                round_,
                0.98,
                f" fold{'s' if len(folds) > 1 else ''} {_list(folds)}",
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
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return fig


def _test_macro_f1(record):
    return record["test"]["macro_f1"]


def _folds_by_round(chosen: dict[int, int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for fold, round_ in sorted(chosen.items()):
        out.setdefault(round_, []).append(fold)
    return dict(sorted(out.items()))


def _list(items) -> str:
    return ", ".join(str(i) for i in items)


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
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
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
    axes[0].legend(fontsize=7)
    fig.suptitle(
        f"curves shifted by {CLASS_OFFSET} round per score so that equal values stay visible",
        fontsize=8,
    )
    fig.tight_layout()
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
    ax.legend(fontsize=8)
    fig.tight_layout()
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
    axes[0].legend(fontsize=8)
    fig.suptitle("expected score (softmax-weighted mean of the class scores)", fontsize=8)
    fig.tight_layout()
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


def _pm(stat: dict) -> str:
    if stat["n"] == 0:
        return "–"
    return f"{stat['mean']:.3f}" if stat["n"] == 1 else f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def chosen_records(records, chosen: dict[int, int]) -> list[dict]:
    return [r for r in records if chosen.get(r["fold"]) == r["round"]]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


NAMES = {
    "macro_f1": "macro F",
    "balanced_accuracy": "balanced accuracy",
    "minority_recall": "minority recall",
    "majority_recall": "majority recall",
}


def _one_fold(extent, missing_folds: bool, what: str) -> str:
    """The sentence of a verdict on one fold: a single split, or one fold of several planned
    (the others did not run, as with protocol.max_folds=1), whatever round was chosen."""
    one = (
        f"one fold of protocol.folds={extent.folds} (the others did not run)"
        if missing_folds
        else "one split (`protocol.folds=1`)"
    )
    return (
        f"With {one} the fold-to-fold spread is unknown: nothing here tells {what} from the "
        "noise of one draw of the data."
    )


def verdict(
    records,
    chosen: dict[int, int],
    num_majority: int,
    extent: completeness.Completeness | None = None,
) -> list[str]:
    """The report's opening: the chosen round against round 1 on test, in words.

    Better or worse is read from the mean paired difference in test macro F (the figure the
    round is chosen on); whether it exceeds the folds' spread, from that difference's mean
    against its std over folds. One split has no spread to compare with, and says so. A
    partial run (`extent`) is judged on the rounds and folds that ran, and says so: a round
    that did not run shows neither gain nor loss.
    """
    versus = fold_stats.against_round1(records, chosen, num_majority)
    k = len(versus["folds"])
    rounds = _folds_by_round(chosen)
    shown = [n for n in fold_stats.VERDICT_FIGURES if versus["chosen"][n]["n"]]
    figures = ", ".join(
        f"{NAMES[n]} {_pm(versus['chosen'][n])} vs {_pm(versus['round1'][n])}" for n in shown
    )
    partial_rounds = extent is not None and extent.rounds_missing
    missing_folds = extent is not None and bool(extent.missing_folds)
    that_ran = " that ran" if missing_folds else ""
    where = "on test" if k == 1 else f"on test (mean ± std over {k} folds{that_ran})"
    if list(rounds) == [1]:
        figures = ", ".join(f"{NAMES[n]} {_pm(versus['chosen'][n])}" for n in shown)
        if not partial_rounds:
            gain = "no later round did better, so this run shows no gain from the later rounds"
        elif all(len(rs) == 1 for rs in extent.done.values() if rs):
            gain = "no later round ran, so this run says nothing yet about the later rounds"
        else:
            gain = (
                "no later round that ran did better, so the rounds that ran show no gain over "
                "round 1; the rounds that did not run are not judged"
            )
        lines = [
            f"**Verdict.** The chosen round is round 1 itself: on validation {gain} ({where}: "
            f"{figures})."
        ]
        if k == 1:
            lines.append(_one_fold(extent, missing_folds, "this result"))
    else:
        if len(rounds) == 1:
            subject = f"The chosen round {next(iter(rounds))} is"
        else:
            per_fold = ", ".join(f"fold {f}: {r}" for f, r in sorted(chosen.items()))
            subject = f"The rounds chosen on validation ({per_fold}) are"
        diff = versus["diff"]["macro_f1"]
        # Below 0.01 macro F (about one photo of a mid-sized test class) say "about level":
        # "better" for 0.002 reads stronger than anything such a gap can show.
        sign = int(np.sign(diff["mean"])) if abs(diff["mean"]) >= LEVEL_BELOW else 0
        relation = {-1: "worse than", 0: "about level with", 1: "better than"}[sign]
        of_ran = "Of the rounds that ran, " if partial_rounds else ""
        if of_ran:
            subject = subject[0].lower() + subject[1:]
        contrast = _contrast(versus, sign, shown)
        if contrast:  # a figure that moved the other way is said in the same breath
            relation = f"{relation} round 1 in macro F but {contrast},"
        else:
            relation = f"{relation} round 1"
        lines = [f"**Verdict.** {of_ran}{subject} {relation} {where}: {figures}."]
        if k == 1:
            lines.append(_one_fold(extent, missing_folds, "this difference"))
        else:
            deltas = [f["chosen"]["macro_f1"] - f["round1"]["macro_f1"] for f in versus["folds"]]
            better, worse = sum(d > 0 for d in deltas), sum(d < 0 for d in deltas)
            equal = f", equal in {k - better - worse}" if k - better - worse else ""
            beyond = abs(diff["mean"]) > diff["std"]
            lines.append(
                f"Fold by fold, chosen minus round 1 in test macro F is {diff['mean']:+.3f} ± "
                f"{diff['std']:.3f} (better in {better}, worse in {worse}{equal} of {k} folds): "
                + (
                    "larger than its fold-to-fold spread."
                    if beyond
                    else "not larger than its fold-to-fold spread, so the folds do not show "
                    "a consistent difference."
                )
            )
    majority = {tuple(f["majority"]) for f in versus["folds"]}
    scores = (
        "scores " + _list(next(iter(majority)))
        if len(majority) == 1
        else "per fold: " + "; ".join(_list(f["majority"]) for f in versus["folds"])
    )
    lines.append(
        f"Majority: the {num_majority} largest classes of the training data ({scores}); "
        "minority: the other classes; each group's recall is the mean over its classes with "
        "test photos."
    )
    return lines


def _contrast(versus: dict, sign: int, shown: list[str]) -> str:
    """'better in minority recall' (and the like) for the verdict's figures other than macro
    F whose mean moved at least LEVEL_BELOW against macro F's direction `sign` (-1, 0, 1):
    a round worse on macro F but better for the minority classes is both, and says so."""
    parts = {1: [], -1: []}
    for name in shown[1:]:
        change = versus["chosen"][name]["mean"] - versus["round1"][name]["mean"]
        moved = int(np.sign(change)) if abs(change) >= LEVEL_BELOW else 0
        if moved and moved != sign:
            parts[moved].append(NAMES[name])
    said = [f"{word} in {_and(parts[s])}" for s, word in ((1, "better"), (-1, "worse")) if parts[s]]
    return ", and ".join(said)


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _validation_sizes(records) -> str:
    """How many validation photos each class has: the round is chosen on these."""
    first = {fold: rs[0]["val"]["per_class"] for fold, rs in fold_stats.by_fold(records).items()}
    if len(first) == 1:
        (per_class,) = first.values()
        sizes = {s: c["support"] for s, c in per_class.items()}
        with_photos = {s: n for s, n in sizes.items() if n}
        if not with_photos:
            return "The validation part has no photos."
        smallest = min(with_photos, key=with_photos.get)
        n = with_photos[smallest]
        none = [s for s, n in sizes.items() if not n]
        text = (
            f"With one split the round is chosen on one validation part of "
            f"{sum(sizes.values())} photos: "
            + ", ".join(f"score {s}: {n}" for s, n in sizes.items())
            + f". Its smallest class, score {smallest}, has {_plural(n, 'photo')}: one photo "
            f"more or less right moves that class's validation recall by {1 / n:.3f}."
        )
        if none:
            text += (
                f" Score {none[0]} has no validation photo."
                if len(none) == 1
                else f" Scores {_list(none)} have no validation photos."
            )
        return text
    smallest = {}
    for fold, per_class in sorted(first.items()):
        sizes = {s: c["support"] for s, c in per_class.items() if c["support"]}
        if sizes:
            score = min(sizes, key=sizes.get)
            smallest[fold] = (score, sizes[score])
    scores = {score for score, _ in smallest.values()}
    if len(scores) == 1:
        low, high = min(n for _, n in smallest.values()), max(n for _, n in smallest.values())
        photos = _plural(low, "photo") if low == high else f"{low}-{high} photos"
        return (
            f"The smallest class of each fold's validation part, score {scores.pop()}, has "
            f"{photos}."
        )
    return "The smallest class of each fold's validation part: " + (
        "; ".join(
            f"fold {fold}: score {score}, {_plural(n, 'photo')}"
            for fold, (score, n) in smallest.items()
        )
        + "."
    )


def round_choice(records, summary, chosen: dict[int, int], rule: str) -> list[str]:
    """How the round was chosen, how often that missed the round best on test, at what
    cost, and the other rule's choice for comparison."""
    k = len(chosen)
    if rule == "per_fold":
        how = (
            "Each fold's round is its best round on validation macro F (earliest on ties); "
            "the test set never chooses."
        )
    else:
        how = (
            f"Every fold takes round {next(iter(chosen.values()))}, the best on validation "
            f"macro F averaged over the {k} folds (earliest on ties; `--round_choice="
            "over_folds`). The test set never chooses"
            + (
                ", but each fold's validation part lies in the other folds' test parts, so "
                "this is a little optimistic."
                if k > 1
                else "."
            )
        )
    missed = fold_stats.against_test_best(records, chosen)
    text = (
        f"In {missed['not_test_best']} of {_plural(k, 'fold')} the validation choice was not "
        "the test-best round"
    )
    if missed["not_test_best"]:
        details = "; ".join(
            f"fold {f['fold']}: round {f['chosen']} chosen, round {f['test_best']} best on "
            f"test, {f['cost']:.3f} lower test macro F"
            for f in missed["folds"]
            if f["cost"] > 0
        )
        text += f" ({details})"
        if k > 1:
            text += (
                f": it cost {missed['cost_where_missed']['mean']:.3f} test macro F on average "
                f"where it missed, {missed['cost']['mean']:.3f} over all {k} folds"
            )
    lines = [how, text + "."]
    if k > 1:
        other = "over_folds" if rule == "per_fold" else "per_fold"
        other_chosen = fold_stats.chosen_rounds(records, other)
        other_missed = fold_stats.against_test_best(records, other_chosen)
        test = fold_stats.mean_std(
            [r["test"]["macro_f1"] for r in chosen_records(records, other_chosen)]
        )
        if other == "over_folds":
            over = summary["over_folds"]
            lines.append(
                f"Averaged over the folds, round {over['round']} has the best validation "
                f"macro F ({_pm(over['val_macro_f1'])}); taking it in every fold "
                "(`python -m rsrl_jax.report --round_choice=over_folds`) gives test macro F "
                f"{_pm(test)} and misses the test-best round in {other_missed['not_test_best']}"
                f" of {k} folds. It pools the {k} validation parts, but each lies in the other "
                "folds' test parts, so it is shown, not used."
            )
        else:
            lines.append(
                "Each fold's own best round on validation (the default, `--round_choice="
                f"per_fold`): rounds {_list(other_chosen[f] for f in sorted(other_chosen))}, "
                f"test macro F {_pm(test)}, missing the test-best round in "
                f"{other_missed['not_test_best']} of {k} folds."
            )
    lines.append(_validation_sizes(records))
    return lines


def rounds_table(summary, chosen: dict[int, int]) -> list[str]:
    """One row per round: training set size, validation and test figures (mean ± std)."""
    by_round = _folds_by_round(chosen)
    lines = [
        "| round | training set size | val macro F | test macro F | test balanced accuracy | "
        "test accuracy | test SRCC | test PLCC | chosen |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for entry in summary["rounds"]:
        size = entry["train_size"]
        size_text = (
            f"{size['mean']:.0f}" if size["n"] == 1 else f"{size['mean']:.0f} ± {size['std']:.0f}"
        )
        folds = by_round.get(entry["round"], [])
        mark = (
            ""
            if not folds
            else "chosen"
            if len(folds) == len(chosen)
            else f"fold{'s' if len(folds) > 1 else ''} {_list(folds)}"
        )
        lines.append(
            f"| {entry['round']} | {size_text} | {_pm(entry['val']['macro_f1'])} | "
            f"{_pm(entry['test']['macro_f1'])} | {_pm(entry['test']['balanced_accuracy'])} | "
            f"{_pm(entry['test']['accuracy'])} | {_pm(entry['test']['srcc'])} | "
            f"{_pm(entry['test']['plcc'])} | {mark} |"
        )
    return lines


def aesthetic_line(records, chosen: dict[int, int], good_threshold: float) -> str:
    """The report's line on the aesthetic figures: the chosen rounds' and round 1's on test,
    mean ± std over folds ("–": undefined in every fold)."""
    undefined = False

    def figures(rs) -> str:
        nonlocal undefined
        stats = {n: fold_stats.figure_stats([r["test"] for r in rs], n) for n in aesthetic.FIGURES}
        undefined |= any(s["n"] == 0 for s in stats.values())
        return ", ".join(f"{aesthetic.TITLES[n]} {_pm(s)}" for n, s in stats.items())

    first = min(r["round"] for r in records)
    line = (
        "Aesthetic figures on test, the expected score (softmax-weighted mean of the class "
        f"scores) against the true score, binary accuracy with good above {good_threshold:g}: "
    )
    if set(chosen.values()) == {first}:
        line += f"the chosen round, round {first}: {figures(chosen_records(records, chosen))}"
    else:
        line += (
            f"the chosen round: {figures(chosen_records(records, chosen))}; round {first}: "
            f"{figures([r for r in records if r['round'] == first])}"
        )
    if undefined:
        line += " (–: undefined in every fold, e.g. a correlation with constant predictions)"
    return line + "."


def markdown(
    records,
    summary,
    class_scores,
    config_json: str,
    extra_images,
    rule: str = "per_fold",
    extent: completeness.Completeness | None = None,
) -> str:
    config = json.loads(config_json)
    num_majority = config["rsrl"]["num_majority"]
    good_threshold = config.get("eval", {}).get("good_threshold", 5.0)  # older runs: default
    chosen_by_fold = fold_stats.chosen_rounds(records, rule)
    chosen = chosen_records(records, chosen_by_fold)
    folds = len(summary["folds"])
    lines = ["# RSRL run report", ""]
    if extent is not None and extent.partial:  # before any conclusion: what they rest on
        lines += [f"**{extent.line()[0].upper()}{extent.line()[1:]}.**", ""]
    lines += [" ".join(verdict(records, chosen_by_fold, num_majority, extent)), ""]
    lines += ["![macro F per round](macro_f1.png)", ""]
    lines += ["## How the round was chosen", ""]
    lines += [" ".join(round_choice(records, summary, chosen_by_fold, rule)), ""]
    lines += [
        "## Rounds" + (f" (mean ± std over {folds} folds)" if folds > 1 else ""),
        "",
        *rounds_table(summary, chosen_by_fold),
        "",
        aesthetic_line(records, chosen_by_fold, good_threshold),
        "",
        "## Per fold",
        "",
        f"{_plural(folds, 'fold')}, {max(r['round'] for r in records)} round(s). Each fold's "
        "own choice on validation; the last two columns show what choosing on test (the "
        "paper's protocol) would report, for contrast only.",
        "",
        "| fold | chosen round | val macro F | test macro F | test accuracy | round 1 test "
        "macro F | round chosen on test | its test macro F |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in summary["folds"]:
        lines.append(
            f"| {f['fold']} | {f['chosen_round']} | {f['val_macro_f1']:.3f} | "
            f"{f['test_macro_f1']:.3f} | {f['test_accuracy']:.3f} | "
            f"{f['round1_test_macro_f1']:.3f} | {f['round_chosen_on_test']} | "
            f"{f['test_macro_f1_chosen_on_test']:.3f} |"
        )
    for part in ("test", "val"):
        lines += [
            "",
            f"## Chosen round, {part}: per class (mean ± std over folds)",
            "",
            "| score | precision | recall | F | support |",
            "| --- | --- | --- | --- | --- |",
        ]
        for score in class_scores:
            cls = [r[part]["per_class"][str(score)] for r in chosen]
            stat = {
                name: fold_stats.mean_std([c[name] for c in cls if c.get("present", True)])
                for name in fold_stats.PER_CLASS
            }
            support = sum(c["support"] for c in cls)
            lines.append(
                f"| {score} | {_pm(stat['precision'])} | {_pm(stat['recall'])} | "
                f"{_pm(stat['f1'])} | {support} |"
            )
        overall = {k: fold_stats.mean_std([r[part][k] for r in chosen]) for k in fold_stats.FIGURES}
        lines += ["", f"Macro F {_pm(overall['macro_f1'])}, accuracy {_pm(overall['accuracy'])}."]
    lines += ["", *selection_report.section(records, config_json)]
    lines += ["", "## Figures", ""]
    titles = {
        "macro_f1": "Validation and test macro F per round, the chosen round dashed",
        "training_set_size": "Training set size per round, by score (paper Fig. 4)",
        "per_class_val": "Validation precision, recall, F per class (paper Figs. 5-7)",
        "per_class_test": "Test precision, recall, F per class (paper Figs. 5-7)",
        "accuracy": "Train vs test accuracy per round (paper Fig. 8)",
        "confusion_matrix": "Confusion matrix of the chosen round, test photos of all folds",
        "aesthetic": "SRCC and PLCC of the expected score with the true score, per round",
    }
    for key, name in FIGURES.items():
        if key != "macro_f1":  # shown under the verdict
            lines += [f"### {titles[key]}", "", f"![{key}]({name})", ""]
    for name in extra_images:
        lines += [f"### {os.path.splitext(name)[0].replace('_', ' ')}", "", f"![]({name})", ""]
    no_highlights = inputs.no_highlights(json.loads(config_json))
    if no_highlights:
        lines += ["### Highlight regions (paper Fig. 10)", "", f"None: {no_highlights}.", ""]
    lines += ["## Config", "", "```json", config_json.strip(), "```", ""]
    return "\n".join(lines)


def write_report(
    workdir: str, records: list[dict] | None = None, rule: str = "per_fold", out: str | None = None
) -> str:
    """Writes `workdir/report/` (figures and report.md) from the run's metrics; returns its path.

    `rule` (fold_stats.ROUND_CHOICES) picks each fold's round; summary.json and the networks
    that predict and highlight use keep each fold's own choice whatever it is. `out`: another
    folder for the report (the run's highlight panels are copied there), so that a read-only
    workdir, or one a run is writing, is only read.
    """
    records = read_records(workdir) if records is None else records
    if not records:
        raise errors.DataError(f"{workdir}/metrics.jsonl has no records yet")
    with open(os.path.join(workdir, "classes.json")) as f:
        class_scores = json.load(f)["class_scores"]
    with open(os.path.join(workdir, "config.json")) as f:
        config_json = f.read()
    chosen = fold_stats.chosen_rounds(records, rule)
    summary = fold_stats.summarize(records)
    extent = completeness.of_workdir(workdir, records)
    if extent.partial:
        logging.warning("%s: %s", workdir, extent.line())
    own = os.path.join(workdir, "report")
    out = own if out is None else out
    os.makedirs(out, exist_ok=True)
    if os.path.isdir(own) and not os.path.samefile(out, own):
        for panel in glob.glob(os.path.join(glob.escape(own), "highlights_fold*.png")):
            shutil.copy(panel, out)  # drawn by the run from its data: not redrawn here
    plot_macro_f1(records, chosen, os.path.join(out, FIGURES["macro_f1"]))
    plot_training_set_size(records, class_scores, os.path.join(out, FIGURES["training_set_size"]))
    for part in ("val", "test"):
        plot_per_class(records, class_scores, part, os.path.join(out, FIGURES[f"per_class_{part}"]))
    plot_accuracy(records, os.path.join(out, FIGURES["accuracy"]))
    matrix = sum(np.asarray(r["test"]["confusion_matrix"]) for r in chosen_records(records, chosen))
    plot_confusion(
        matrix,
        class_scores,
        "Chosen round, test",
        os.path.join(out, FIGURES["confusion_matrix"]),
    )
    plot_aesthetic(records, os.path.join(out, FIGURES["aesthetic"]))
    selection_truth.plot(records, os.path.join(out, selection_truth.FIGURE))  # synthetic only
    extra = sorted(
        os.path.basename(p)
        for p in glob.glob(os.path.join(glob.escape(out), "*.png"))  # out may hold [ ] * ?
        if os.path.basename(p) not in (*FIGURES.values(), selection_truth.FIGURE)
    )
    path = os.path.join(out, "report.md")
    # whole or not at all: a kill or a full disk mid-write leaves the previous report.md
    write_atomic(path, markdown(records, summary, class_scores, config_json, extra, rule, extent))
    return path
