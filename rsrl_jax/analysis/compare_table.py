"""The compare table: each method's figures per fold and over folds, as markdown and a plot.

Reads the `metrics.jsonl` records of each method's run (`compare.compare` runs them): per
fold the round chosen on validation macro F (and, for contrast, on test), its test figures,
and their mean ± std over folds.
"""

import numpy as np

from rsrl_jax.analysis.figures import fit_y, legend_below, new_figure
from rsrl_jax.metrics import aesthetic, fold_stats

# (key, column title) of the headline figures, each a test figure of a chosen round.
FIGURES = (
    ("macro_f1", "macro F"),
    ("balanced_accuracy", "balanced acc."),
    ("accuracy", "accuracy"),
    ("minority_precision", "minority P"),
    ("minority_recall", "minority R"),
    ("majority_precision", "majority P"),
    ("majority_recall", "majority R"),
)
# The aesthetic figures of the expected score (`aesthetic`), a table of their own.
AESTHETIC = tuple((name, aesthetic.TITLES[name]) for name in aesthetic.FIGURES)
CHOICES = (("honest", "val"), ("on_test", "test"))  # which split chooses the round


def split_figures(record: dict, majority: list[str]) -> dict:
    """The figures the table reports, of one round's test split."""
    test = record["test"]
    figures = {name: test[name] for name in ("macro_f1", "balanced_accuracy", "accuracy")}
    figures.update(fold_stats.group_averages(test, majority))
    figures.update(aesthetic.figures(test))  # None: undefined, or a record made before them
    figures["recall"] = {score: c["recall"] for score, c in test["per_class"].items()}
    figures["support"] = {score: c["support"] for score, c in test["per_class"].items()}
    return figures


def method_summary(records: list[dict], num_majority: int) -> dict:
    """Per fold the rounds chosen on val and on test and their figures; mean/std over folds."""
    folds = []
    for fold in sorted({r["fold"] for r in records}):
        rs = sorted((r for r in records if r["fold"] == fold), key=lambda r: r["round"])
        majority = fold_stats.majority_scores(rs[0], num_majority)
        entry = {
            "fold": fold,
            "majority_scores": majority,
            "steps": int(sum(r["steps"] for r in rs)),
            "rounds": len(rs),
        }
        for choice, split in CHOICES:
            chosen = fold_stats.choose_round(rs, split)
            entry[choice] = {"round": chosen["round"], **split_figures(chosen, majority)}
        folds.append(entry)
    over_folds = {}
    for choice, _ in CHOICES:
        stats = {
            name: fold_stats.mean_std(
                [f[choice][name] for f in folds if f[choice][name] is not None]
            )
            for name, _ in FIGURES + AESTHETIC
        }
        stats["recall"] = {
            score: fold_stats.mean_std(
                [f[choice]["recall"][score] for f in folds if f[choice]["support"][score]]
            )
            for score in folds[0][choice]["recall"]
        }
        over_folds[choice] = stats
    return {
        "folds": folds,
        "steps": fold_stats.mean_std([f["steps"] for f in folds]),
        **over_folds,
    }


def _cell(stat: dict, protocol: dict) -> str:
    if stat["n"] == 0:
        return "–"
    honest = f"{stat['mean']:.3f}" + (f" ± {stat['std']:.3f}" if stat["n"] > 1 else "")
    return f"{honest} ({protocol['mean']:.3f})" if protocol["n"] else honest


PARTIAL = " (partial)"  # after a method's name in every row of a partial run


def partial_note(partial: dict[str, str], unit: str) -> list[str]:
    """The lines that name each partial run (`partial`: name -> `Completeness.line`)."""
    if not partial:
        return []
    return [
        f"Rows marked{PARTIAL} are of a partial run: their figures rest on the {unit} and "
        "rounds that ran (a round that did not run shows neither gain nor loss). "
        + " ".join(f"`{name}`: {line}." for name, line in partial.items()),
        "",
    ]


def markdown(
    summaries: dict, class_scores, config, equal_steps: bool, partial: dict | None = None
) -> str:
    """compare.md; `partial`: method -> the line of its partial run (`run.completeness`),
    named under the heading and marked in each of its rows."""
    partial = partial or {}
    first = next(iter(summaries.values()))
    num_folds = len(first["folds"])
    majority = sorted({s for f in first["folds"] for s in f["majority_scores"]}, key=int)
    budget = (
        "every epoch as long as a pass over all of D (`train.epoch_samples='all'`), so every "
        "method spends the same optimizer steps"
        if equal_steps
        else "the config's epochs (`--equal_steps=False`): the steps may differ"
    )
    lines = [
        "# Imbalance methods compared",
        "",
        f"{num_folds} fold(s) of `{config.data.name}` data, {config.rsrl.rounds} round(s) per "
        f"method; budget: {budget}. Each cell: the test figure of the round chosen on "
        "validation macro F, mean ± std over folds; in brackets the same figure of the round "
        "chosen on test macro F (the paper's protocol: optimistic, for contrast only). "
        f"Majority classes: the {config.rsrl.num_majority} largest of each fold's training "
        f"set (scores {', '.join(majority)}); minority: the others. Group averages are over "
        "the classes with test samples.",
        "",
        *partial_note(partial, "folds"),
        "| method | steps / fold | rounds chosen (val; test) | "
        + " | ".join(title for _, title in FIGURES)
        + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in FIGURES) + " |",
    ]
    for method, s in summaries.items():
        steps = s["steps"]
        rounds = ", ".join(str(f["honest"]["round"]) for f in s["folds"])
        on_test = ", ".join(str(f["on_test"]["round"]) for f in s["folds"])
        cells = [_cell(s["honest"][name], s["on_test"][name]) for name, _ in FIGURES]
        lines.append(
            f"| {_name(method, partial)} | {steps['mean']:.0f} | val: {rounds}; test: {on_test} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "## Test recall per class (round chosen on validation; in brackets, on test)",
        "",
        "| method | " + " | ".join(f"score {s}" for s in class_scores) + " |",
        "| --- | " + " | ".join("---" for _ in class_scores) + " |",
    ]
    for method, s in summaries.items():
        cells = [
            _cell(s["honest"]["recall"][str(c)], s["on_test"]["recall"][str(c)])
            for c in class_scores
        ]
        lines.append(f"| {_name(method, partial)} | " + " | ".join(cells) + " |")
    threshold = config.eval.good_threshold
    lines += [
        "",
        "## Aesthetic figures (round chosen on validation; in brackets, on test)",
        "",
        "The expected score (softmax-weighted mean of the class scores) against the true score "
        f"on test; binary accuracy: good above {threshold:g}. A fold where a correlation is "
        "undefined (constant predictions) is left out of its mean.",
        "",
        "| method | " + " | ".join(title for _, title in AESTHETIC) + " |",
        "| --- | " + " | ".join("---" for _ in AESTHETIC) + " |",
    ]
    for method, s in summaries.items():
        cells = [_cell(s["honest"][name], s["on_test"][name]) for name, _ in AESTHETIC]
        lines.append(f"| {_name(method, partial)} | " + " | ".join(cells) + " |")
    support = {
        str(c): sum(f["honest"]["support"][str(c)] for f in first["folds"]) for c in class_scores
    }
    lines += [
        "",
        "Test photos per score, all folds: "
        + ", ".join(f"{c}: {support[str(c)]}" for c in class_scores)
        + ". Each method's own run (curves per round, confusion matrix) is in "
        "`<method>/report/report.md`.",
        "",
        "![compare](compare.png)",
        "",
    ]
    return "\n".join(lines)


def _name(method: str, partial: dict) -> str:
    return method + PARTIAL if method in partial else method


def plot(summaries: dict, class_scores, path: str) -> None:
    """Headline figures and per-class recall, one bar per method (±1 std over folds); the
    diamond on each bar is the same figure with the round chosen on test."""
    methods = list(summaries)
    width = 0.8 / len(methods)
    fig = new_figure(max(10, 1.2 * len(FIGURES) * len(methods) / 3), 9)
    axes = fig.subplots(2, 1)
    panels = (
        (axes[0], [(name, title) for name, title in FIGURES], lambda s, c, k: s[c][k]),
        (
            axes[1],
            [(str(c), f"score {c}") for c in class_scores],
            lambda s, c, k: s[c]["recall"][k],
        ),
    )
    for ax, columns, stat_of in panels:
        x = np.arange(len(columns))
        for i, method in enumerate(methods):
            s = summaries[method]
            honest = [stat_of(s, "honest", k) for k, _ in columns]
            on_test = [stat_of(s, "on_test", k) for k, _ in columns]
            mean = [h["mean"] if h["n"] else np.nan for h in honest]
            std = [h["std"] if h["n"] else 0.0 for h in honest]
            pos = x - 0.4 + (i + 0.5) * width
            ax.bar(pos, mean, width, yerr=std, capsize=2, label=method)
            ax.plot(
                pos,
                [t["mean"] if t["n"] else np.nan for t in on_test],
                "kD",
                markersize=4,
                markerfacecolor="white",
                linestyle="none",
            )
        ax.set_xticks(x, [title for _, title in columns])
        fit_y(ax, 0, 1)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_title("Test figures, round chosen on validation (◇: the round chosen on test)")
    axes[1].set_title("Test recall per class")
    legend_below(fig, axes[0], ncol=min(6, len(methods)))
    fig.savefig(path, dpi=100)
