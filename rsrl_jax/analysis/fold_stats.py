"""Per-round mean and standard deviation over the k folds of the protocol.

The paper reports one curve per round (its Figs. 5-8); with k folds each point becomes a
mean with a spread. A class's per-class figures are averaged only over the folds where it is
present (true or predicted samples), as the macro averages are within one fold.
"""

import numpy as np

from rsrl_jax.method import selection

PARTS = ("val", "test")
FIGURES = ("macro_f1", "accuracy")
PER_CLASS = ("precision", "recall", "f1")


def mean_std(values) -> dict:
    """{mean, std, n}: std is the population std (numpy's default; 0 for one fold)."""
    a = np.asarray(values, np.float64)
    if a.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(a.mean()), "std": float(a.std()), "n": int(a.size)}


def rounds_over_folds(records: list[dict]) -> list[dict]:
    """One entry per round: val/test macro F, accuracy and per-class P/R/F over the folds."""
    out = []
    for round_ in sorted({r["round"] for r in records}):
        rs = [r for r in records if r["round"] == round_]
        entry = {"round": round_, "folds": sorted(r["fold"] for r in rs)}
        entry["train_size"] = mean_std([r["train_size"] for r in rs])
        for part in PARTS:
            figures = {name: mean_std([r[part][name] for r in rs]) for name in FIGURES}
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


def summarize(records: list[dict]) -> dict:
    """Per fold: the chosen round (on validation) and, for contrast, the paper's choice on test.

    `rounds`: per round, the mean and std over the folds of the val and test figures.
    """
    folds = []
    for fold in sorted({r["fold"] for r in records}):
        rs = sorted((r for r in records if r["fold"] == fold), key=lambda r: r["round"])
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
    return {"folds": folds, "rounds": rounds_over_folds(records)}
