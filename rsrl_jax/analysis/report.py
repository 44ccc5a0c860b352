"""The run's report: the paper's figures per round, the chosen round's table, report.md.

  python -m rsrl_jax.report --workdir=DIR

rebuilds `DIR/report/` from `metrics.jsonl` without training. Figures: the training set
size per round stacked by class (paper Fig. 4), per-class precision/recall/F per round for
validation and test (Figs. 5-7), train vs test accuracy (Fig. 8), the chosen round's
confusion matrix. With several folds each curve is the mean over folds with a band of one
standard deviation.
"""

import glob
import json
import os

import numpy as np

from rsrl_jax import errors
from rsrl_jax.analysis import fold_stats, selection_report
from rsrl_jax.analysis.figures import new_figure

FIGURES = {
    "training_set_size": "training_set_size.png",
    "per_class_val": "per_class_val.png",
    "per_class_test": "per_class_test.png",
    "accuracy": "accuracy.png",
    "confusion_matrix": "confusion_matrix.png",
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


def _band(ax, rounds, values, label, **kw):
    """Mean over folds with a +-1 std band (no band for a single fold)."""
    mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    (line,) = ax.plot(rounds, mean, marker="o", markersize=3, label=label, **kw)
    if values.shape[0] > 1:
        ax.fill_between(rounds, mean - std, mean + std, color=line.get_color(), alpha=0.15)


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


def plot_per_class(records, class_scores, part, path):
    rounds = sorted({r["round"] for r in records})
    fig = new_figure(14, 4)
    axes = fig.subplots(1, 3, sharey=True)
    for ax, name in zip(axes, fold_stats.PER_CLASS, strict=True):
        for score in class_scores:
            key = str(score)
            present = _by_fold_round(
                records, lambda r, k=key: r[part]["per_class"][k]["support"] > 0
            )
            if not np.nansum(present):
                continue  # no true sample of this score in any fold (e.g. score 9)
            values = _by_fold_round(records, lambda r, k=key: r[part]["per_class"][k][name])  # noqa: B023
            _band(ax, rounds, values, f"score {score}")
        ax.set(xlabel="round", title=f"{part} {name}", ylim=(-0.02, 1.02))
        ax.set_xticks(rounds)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


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
    ax.set(xlabel="round", ylabel="accuracy", title="Accuracy per round", ylim=(0, 1.02))
    ax.set_xticks(rounds)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


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


def chosen_records(records, summary) -> list[dict]:
    chosen = {f["fold"]: f["chosen_round"] for f in summary["folds"]}
    return [r for r in records if chosen.get(r["fold"]) == r["round"]]


def markdown(records, summary, class_scores, config_json: str, extra_images) -> str:
    chosen = chosen_records(records, summary)
    folds = len(summary["folds"])
    lines = [
        "# RSRL run report",
        "",
        f"{folds} fold(s), {max(r['round'] for r in records)} round(s). The chosen round of "
        "each fold is the best on validation macro F; the test set never chooses. The last "
        "two columns show what choosing on test (the paper's protocol) would report, for "
        "contrast only.",
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
        "training_set_size": "Training set size per round, by score (paper Fig. 4)",
        "per_class_val": "Validation precision, recall, F per class (paper Figs. 5-7)",
        "per_class_test": "Test precision, recall, F per class (paper Figs. 5-7)",
        "accuracy": "Train vs test accuracy per round (paper Fig. 8)",
        "confusion_matrix": "Confusion matrix of the chosen round, test photos of all folds",
    }
    for key, name in FIGURES.items():
        lines += [f"### {titles[key]}", "", f"![{key}]({name})", ""]
    for name in extra_images:
        lines += [f"### {os.path.splitext(name)[0].replace('_', ' ')}", "", f"![]({name})", ""]
    lines += ["## Config", "", "```json", config_json.strip(), "```", ""]
    return "\n".join(lines)


def write_report(workdir: str, records: list[dict] | None = None) -> str:
    """Writes `workdir/report/` (figures and report.md) from the run's metrics; returns its path."""
    records = read_records(workdir) if records is None else records
    if not records:
        raise errors.DataError(f"{workdir}/metrics.jsonl has no records yet")
    with open(os.path.join(workdir, "classes.json")) as f:
        class_scores = json.load(f)["class_scores"]
    with open(os.path.join(workdir, "config.json")) as f:
        config_json = f.read()
    summary = fold_stats.summarize(records)
    out = os.path.join(workdir, "report")
    os.makedirs(out, exist_ok=True)
    plot_training_set_size(records, class_scores, os.path.join(out, FIGURES["training_set_size"]))
    for part in ("val", "test"):
        plot_per_class(records, class_scores, part, os.path.join(out, FIGURES[f"per_class_{part}"]))
    plot_accuracy(records, os.path.join(out, FIGURES["accuracy"]))
    matrix = sum(
        np.asarray(r["test"]["confusion_matrix"]) for r in chosen_records(records, summary)
    )
    plot_confusion(
        matrix,
        class_scores,
        "Chosen round, test",
        os.path.join(out, FIGURES["confusion_matrix"]),
    )
    extra = sorted(
        os.path.basename(p)
        for p in glob.glob(os.path.join(glob.escape(out), "*.png"))  # out may hold [ ] * ?
        if os.path.basename(p) not in FIGURES.values()
    )
    path = os.path.join(out, "report.md")
    with open(path, "w") as f:
        f.write(markdown(records, summary, class_scores, config_json, extra))
    return path
