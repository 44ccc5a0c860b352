"""The report's words: report.md's verdict (the chosen round against round 1 on test, and
whether the difference is larger than the folds' spread), how the round was chosen and what
that choice missed on test, the rounds and per-fold tables, the aesthetic line. Pure
functions of the metrics records and the summary (`fold_stats.summarize`); no file is read.
"""

import json
import os

from rsrl_jax.analysis import selection_report
from rsrl_jax.analysis.report_figures import FIGURES
from rsrl_jax.analysis.report_verdict import (
    chosen_records,
    folds_by_round,
    listed,
    mean_pm,
    plural,
    verdict,
)
from rsrl_jax.data import inputs
from rsrl_jax.metrics import aesthetic, fold_stats
from rsrl_jax.run import completeness


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
            + f". Its smallest class, score {smallest}, has {plural(n, 'photo')}: one photo "
            f"more or less right moves that class's validation recall by {1 / n:.3f}."
        )
        if none:
            text += (
                f" Score {none[0]} has no validation photo."
                if len(none) == 1
                else f" Scores {listed(none)} have no validation photos."
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
        photos = plural(low, "photo") if low == high else f"{low}-{high} photos"
        return (
            f"The smallest class of each fold's validation part, score {scores.pop()}, has "
            f"{photos}."
        )
    return "The smallest class of each fold's validation part: " + (
        "; ".join(
            f"fold {fold}: score {score}, {plural(n, 'photo')}"
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
        f"In {missed['not_test_best']} of {plural(k, 'fold')} the validation choice was not "
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
                f"macro F ({mean_pm(over['val_macro_f1'])}); taking it in every fold "
                "(`python -m rsrl_jax.report --round_choice=over_folds`) gives test macro F "
                f"{mean_pm(test)} and misses the test-best round in {other_missed['not_test_best']}"
                f" of {k} folds. It pools the {k} validation parts, but each lies in the other "
                "folds' test parts, so it is shown, not used."
            )
        else:
            lines.append(
                "Each fold's own best round on validation (the default, `--round_choice="
                f"per_fold`): rounds {listed(other_chosen[f] for f in sorted(other_chosen))}, "
                f"test macro F {mean_pm(test)}, missing the test-best round in "
                f"{other_missed['not_test_best']} of {k} folds."
            )
    lines.append(_validation_sizes(records))
    return lines


def rounds_table(summary, chosen: dict[int, int]) -> list[str]:
    """One row per round: training set size, validation and test figures (mean ± std)."""
    by_round = folds_by_round(chosen)
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
            else f"fold{'s' if len(folds) > 1 else ''} {listed(folds)}"
        )
        lines.append(
            f"| {entry['round']} | {size_text} | {mean_pm(entry['val']['macro_f1'])} | "
            f"{mean_pm(entry['test']['macro_f1'])} | "
            f"{mean_pm(entry['test']['balanced_accuracy'])} | "
            f"{mean_pm(entry['test']['accuracy'])} | {mean_pm(entry['test']['srcc'])} | "
            f"{mean_pm(entry['test']['plcc'])} | {mark} |"
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
        return ", ".join(f"{aesthetic.TITLES[n]} {mean_pm(s)}" for n, s in stats.items())

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
        f"{plural(folds, 'fold')}, {max(r['round'] for r in records)} round(s). Each fold's "
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
                f"| {score} | {mean_pm(stat['precision'])} | {mean_pm(stat['recall'])} | "
                f"{mean_pm(stat['f1'])} | {support} |"
            )
        overall = {k: fold_stats.mean_std([r[part][k] for r in chosen]) for k in fold_stats.FIGURES}
        lines += [
            "",
            f"Macro F {mean_pm(overall['macro_f1'])}, accuracy {mean_pm(overall['accuracy'])}.",
        ]
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
