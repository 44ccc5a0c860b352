"""Per-round mean and standard deviation over the k folds of the protocol.

The paper reports one curve per round (its Figs. 5-8); with k folds each point becomes a
mean with a spread. A class's per-class figures are averaged only over the folds where it is
present (true or predicted samples), as the macro averages are within one fold.
"""

import numpy as np

from rsrl_jax.method import selection
from rsrl_jax.metrics import aesthetic

PARTS = ("val", "test")
FIGURES = ("macro_f1", "balanced_accuracy", "accuracy")
PER_CLASS = ("precision", "recall", "f1")


def mean_std(values) -> dict:
    """{mean, std, n}: std is the population std (numpy's default; 0 for one fold)."""
    a = np.asarray(values, np.float64)
    if a.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(a.mean()), "std": float(a.std()), "n": int(a.size)}


def figure_stats(parts: list[dict], name: str) -> dict:
    """mean_std of figure `name` over `parts` (one split of several records), leaving out
    the folds where it is None or absent (an undefined correlation, an older record)."""
    return mean_std([p[name] for p in parts if p.get(name) is not None])


def rounds_over_folds(records: list[dict]) -> list[dict]:
    """One entry per round: val/test macro F, accuracy, the aesthetic figures
    (`aesthetic.FIGURES`, over the folds where defined) and per-class P/R/F over the folds."""
    out = []
    for round_ in sorted({r["round"] for r in records}):
        rs = [r for r in records if r["round"] == round_]
        entry = {"round": round_, "folds": sorted(r["fold"] for r in rs)}
        entry["train_size"] = mean_std([r["train_size"] for r in rs])
        for part in PARTS:
            figures = {name: mean_std([r[part][name] for r in rs]) for name in FIGURES}
            figures.update({n: figure_stats([r[part] for r in rs], n) for n in aesthetic.FIGURES})
            classes = rs[0][part]["per_class"]
            figures["per_class"] = {
                score: {
                    name: mean_std(
                        [
                            r[part]["per_class"][score][name]
                            for r in rs
                            if r[part]["per_class"][score].get("present", True)
                        ]
                    )
                    for name in PER_CLASS
                }
                for score in classes
            }
            entry[part] = figures
        out.append(entry)
    return out


def majority_scores(record: dict, num_majority: int) -> list[str]:
    """The `num_majority` largest classes of the fold's training set D, as score names.

    Ranked as `selection.majority_classes` ranks them, from D's supports in the record.
    """
    names = list(record["train"]["per_class"])
    counts = [record["train"]["per_class"][n]["support"] for n in names]
    return [names[i] for i in selection.largest_classes(counts, num_majority)]


def group_averages(part: dict, majority: list[str]) -> dict:
    """Mean precision and recall of the majority classes and of the minority (all other) ones.

    As the paper reports them (§IV: "the average precision of the majority classes ..."),
    over the classes with true samples in the split: the paper leaves out its score 9, which
    has none in its test set. None when a group has no such class.
    """
    out = {}
    for group, members in (
        ("majority", [n for n in part["per_class"] if n in majority]),
        ("minority", [n for n in part["per_class"] if n not in majority]),
    ):
        with_support = [part["per_class"][n] for n in members if part["per_class"][n]["support"]]
        for name in ("precision", "recall"):
            values = [c[name] for c in with_support]
            out[f"{group}_{name}"] = float(np.mean(values)) if values else None
    return out


def choose_round(records: list[dict], split: str = "val") -> dict:
    """The round with the best macro F on `split` (earliest on ties)."""
    return max(records, key=lambda r: (r[split]["macro_f1"], -r["round"]))


# How the report picks each fold's round, both on validation macro F only.
ROUND_CHOICES = ("per_fold", "over_folds")


def round_over_folds(records: list[dict], split: str = "val") -> int:
    """The round with the best MEAN macro F on `split` over the folds (earliest on ties).

    Only rounds that every fold has compete, so a fold still short of rounds cannot tip it.
    Pooling the k validation parts steadies the choice (k times the photos), but each
    fold's validation part lies in the other folds' test parts: that is why the per-fold
    choice stays the default.
    """
    folds = {r["fold"] for r in records}
    by_round: dict[int, list[float]] = {}
    for r in records:
        by_round.setdefault(r["round"], []).append(r[split]["macro_f1"])
    complete = {k: v for k, v in by_round.items() if len(v) == len(folds)}
    return max(complete, key=lambda k: (float(np.mean(complete[k])), -k))


def by_fold(records: list[dict]) -> dict[int, list[dict]]:
    """fold -> its records in round order."""
    out: dict[int, list[dict]] = {}
    for r in sorted(records, key=lambda r: (r["fold"], r["round"])):
        out.setdefault(r["fold"], []).append(r)
    return out


def chosen_rounds(records: list[dict], rule: str = "per_fold") -> dict[int, int]:
    """fold -> the round chosen on validation under `rule` (one of ROUND_CHOICES)."""
    if rule not in ROUND_CHOICES:
        raise ValueError(f"round choice {rule!r}: must be one of {ROUND_CHOICES}")
    folds = by_fold(records)
    if rule == "over_folds":
        round_ = round_over_folds(records)
        return dict.fromkeys(folds, round_)
    return {fold: choose_round(rs, "val")["round"] for fold, rs in folds.items()}


def against_test_best(records: list[dict], chosen: dict[int, int]) -> dict:
    """How often the validation choice misses the round best on test, and what it costs.

    A chosen round tied on test macro F with the best counts as test-best. `cost`: the best
    test macro F minus the chosen round's, per fold (0 where it is test-best).
    """
    folds = []
    for fold, rs in by_fold(records).items():
        best = choose_round(rs, "test")
        mine = next(r for r in rs if r["round"] == chosen[fold])
        cost = best["test"]["macro_f1"] - mine["test"]["macro_f1"]
        folds.append(
            {"fold": fold, "chosen": mine["round"], "test_best": best["round"], "cost": cost}
        )
    missed = [f for f in folds if f["cost"] > 0]
    return {
        "folds": folds,
        "not_test_best": len(missed),
        "cost": mean_std([f["cost"] for f in folds]),
        "cost_where_missed": mean_std([f["cost"] for f in missed]),
    }


VERDICT_FIGURES = ("macro_f1", "balanced_accuracy", "minority_recall", "majority_recall")


def verdict_figures(record: dict, majority: list[str]) -> dict:
    """A round's test macro F, balanced accuracy, minority and majority recall (None when a
    group has no class with test photos)."""
    test = record["test"]
    groups = group_averages(test, majority)
    return {
        "macro_f1": test["macro_f1"],
        "balanced_accuracy": test["balanced_accuracy"],
        "minority_recall": groups["minority_recall"],
        "majority_recall": groups["majority_recall"],
    }


def against_round1(records: list[dict], chosen: dict[int, int], num_majority: int) -> dict:
    """The chosen rounds against round 1 on test, per fold and over folds.

    `chosen`/`round1`: mean ± std over folds of each of VERDICT_FIGURES; `diff`: the paired
    per-fold difference chosen - round 1, whose mean set against its std says whether the
    change is larger than the folds' spread; `majority`: each fold's majority scores.
    """
    folds = []
    for fold, rs in by_fold(records).items():
        majority = majority_scores(rs[0], num_majority)
        mine = next(r for r in rs if r["round"] == chosen[fold])
        folds.append(
            {
                "fold": fold,
                "round": mine["round"],
                "majority": majority,
                "chosen": verdict_figures(mine, majority),
                "round1": verdict_figures(rs[0], majority),
            }
        )

    def stats(values):
        return mean_std([v for v in values if v is not None])

    out = {"folds": folds}
    for side in ("chosen", "round1"):
        out[side] = {name: stats(f[side][name] for f in folds) for name in VERDICT_FIGURES}
    out["diff"] = {
        name: stats(
            None
            if f["chosen"][name] is None or f["round1"][name] is None
            else f["chosen"][name] - f["round1"][name]
            for f in folds
        )
        for name in VERDICT_FIGURES
    }
    return out


def summarize(records: list[dict]) -> dict:
    """Per fold: the chosen round (on validation) and, for contrast, the paper's choice on test.

    `rounds`: per round, the mean and std over the folds of the val and test figures.
    `over_folds`: the round with the best mean validation macro F (`round_over_folds`) and
    its test macro F per fold. `against_test_best`: in how many folds the validation choice
    was not the round best on test, and the test macro F that cost.
    """
    folds = []
    for fold, rs in by_fold(records).items():
        chosen, on_test = choose_round(rs, "val"), choose_round(rs, "test")
        folds.append(
            {
                "fold": fold,
                "chosen_round": chosen["round"],
                "val_macro_f1": chosen["val"]["macro_f1"],
                "test_macro_f1": chosen["test"]["macro_f1"],
                "test_accuracy": chosen["test"]["accuracy"],
                "round1_val_macro_f1": rs[0]["val"]["macro_f1"],
                "round1_test_macro_f1": rs[0]["test"]["macro_f1"],
                "round_chosen_on_test": on_test["round"],
                "test_macro_f1_chosen_on_test": on_test["test"]["macro_f1"],
            }
        )
    over = round_over_folds(records)
    at_over = [r for r in records if r["round"] == over]
    return {
        "folds": folds,
        "rounds": rounds_over_folds(records),
        "over_folds": {
            "round": over,
            "val_macro_f1": mean_std([r["val"]["macro_f1"] for r in at_over]),
            "test_macro_f1": mean_std([r["test"]["macro_f1"] for r in at_over]),
        },
        "against_test_best": {
            rule: against_test_best(records, chosen_rounds(records, rule)) for rule in ROUND_CHOICES
        },
    }
