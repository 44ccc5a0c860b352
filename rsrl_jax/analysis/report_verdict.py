"""report.md's opening verdict in words: the chosen round against round 1 on test, per
figure, and whether the difference is larger than the folds' spread; with the wording the
report's other parts share (mean ± std, lists, plurals, which folds chose which round).
"""

import numpy as np

from rsrl_jax.metrics import fold_stats
from rsrl_jax.run import completeness

LEVEL_BELOW = 0.01  # a mean test macro F difference smaller than this is "about level"


def folds_by_round(chosen: dict[int, int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for fold, round_ in sorted(chosen.items()):
        out.setdefault(round_, []).append(fold)
    return dict(sorted(out.items()))


def listed(items) -> str:
    return ", ".join(str(i) for i in items)


def mean_pm(stat: dict) -> str:
    if stat["n"] == 0:
        return "–"
    return f"{stat['mean']:.3f}" if stat["n"] == 1 else f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def chosen_records(records, chosen: dict[int, int]) -> list[dict]:
    return [r for r in records if chosen.get(r["fold"]) == r["round"]]


def plural(n: int, word: str) -> str:
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
    rounds = folds_by_round(chosen)
    shown = [n for n in fold_stats.VERDICT_FIGURES if versus["chosen"][n]["n"]]
    figures = ", ".join(
        f"{NAMES[n]} {mean_pm(versus['chosen'][n])} vs {mean_pm(versus['round1'][n])}"
        for n in shown
    )
    partial_rounds = extent is not None and extent.rounds_missing
    missing_folds = extent is not None and bool(extent.missing_folds)
    that_ran = " that ran" if missing_folds else ""
    where = "on test" if k == 1 else f"on test (mean ± std over {k} folds{that_ran})"
    if list(rounds) == [1]:
        figures = ", ".join(f"{NAMES[n]} {mean_pm(versus['chosen'][n])}" for n in shown)
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
        "scores " + listed(next(iter(majority)))
        if len(majority) == 1
        else "per fold: " + "; ".join(listed(f["majority"]) for f in versus["folds"])
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
