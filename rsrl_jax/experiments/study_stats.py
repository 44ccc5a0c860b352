"""A study's numbers: per (noise, method) cell, the units (seed x fold), mean ± std, the
paired t interval to the reference method, and what a difference's interval says (`power`).
No files: `study` runs and writes, `study_table` renders.
"""

import math

import numpy as np

from rsrl_jax.analysis import selection_truth
from rsrl_jax.experiments import study_sweep
from rsrl_jax.metrics import aesthetic, fold_stats

REFERENCE = "plain"
FIGURES = fold_stats.VERDICT_FIGURES
# The expected score's figures (`aesthetic`): a table of their own per noise level.
AESTHETIC = aesthetic.FIGURES
CONFIDENCE = 0.95
# The difference in macro F a study should resolve: the half-width its power note aims at.
TARGET_HALF_WIDTH = 0.01


def paired_interval(diffs, confidence: float = CONFIDENCE) -> dict:
    """{mean, std, n, low, high}: the mean of paired differences and its t interval
    (scipy.stats.t; low/high None for fewer than two pairs). std: the sample std (ddof 1)."""
    from scipy import stats

    d = np.asarray([x for x in diffs if x is not None], np.float64)
    if d.size == 0:
        return {"mean": None, "std": None, "n": 0, "low": None, "high": None}
    mean = float(d.mean())
    if d.size < 2:
        return {"mean": mean, "std": None, "n": 1, "low": None, "high": None}
    std = float(d.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, d.size - 1)) * std / math.sqrt(d.size)
    return {"mean": mean, "std": std, "n": int(d.size), "low": mean - half, "high": mean + half}


def t_half_width(std: float, n: int, confidence: float = CONFIDENCE) -> float:
    """t_{(1+confidence)/2, n-1} * std / sqrt(n): the half-width of a t interval over n."""
    from scipy import stats

    return float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)


def units_needed(std, target: float = TARGET_HALF_WIDTH, confidence: float = CONFIDENCE):
    """The fewest paired units n (>= 2) whose t interval's half-width, at the observed sd
    `std`, is at most `target`; None without an sd (fewer than two pairs)."""
    if std is None:
        return None
    if std == 0:
        return 2
    from scipy import stats

    z = float(stats.norm.ppf((1 + confidence) / 2))
    n = max(2, math.ceil((z * std / target) ** 2))  # t > z: a lower bound
    while t_half_width(std, n, confidence) > target:
        n += 1
    return n


def power(interval: dict, method: str, per_seed: int | None = None) -> dict:
    """What a paired difference (`paired_interval`) resolves: `half_width` (the smallest
    difference the study could detect), `excludes_zero`, `words` ("excludes 0: rsrl is lower
    than plain" / "includes 0: no detectable difference"), `units_needed` for a half-width of
    TARGET_HALF_WIDTH at the observed sd, and with `per_seed` units a seed (its folds), the
    `seeds_needed` for it."""
    n = interval["n"]
    if interval["low"] is None:
        return {
            "half_width": None,
            "excludes_zero": None,
            "words": "no paired units" if not n else "one paired unit: no interval",
            "units_needed": None,
            "seeds_needed": None,
        }
    half = (interval["high"] - interval["low"]) / 2
    excludes = interval["low"] > 0 or interval["high"] < 0
    words = (
        f"excludes 0: {method} is {'higher' if interval['low'] > 0 else 'lower'} than {REFERENCE}"
        if excludes
        else "includes 0: no detectable difference"
    )
    need = units_needed(interval["std"])
    return {
        "half_width": half,
        "excludes_zero": excludes,
        "words": words,
        "units_needed": need,
        "seeds_needed": math.ceil(need / per_seed) if need and per_seed else None,
    }


def units(records_by_seed: dict[int, list[dict]], num_majority: int) -> list[dict]:
    """One entry per seed x fold: the round chosen on validation and its verdict figures."""
    out = []
    for seed, records in sorted(records_by_seed.items()):
        for fold, rs in fold_stats.by_fold(records).items():
            majority = fold_stats.majority_scores(rs[0], num_majority)
            chosen = fold_stats.choose_round(rs, "val")
            on_test = fold_stats.choose_round(rs, "test")  # the paper's protocol: optimistic
            out.append(
                {
                    "seed": seed,
                    "fold": fold,
                    "round": chosen["round"],
                    "val_macro_f1": chosen["val"]["macro_f1"],  # what the advice picks on
                    "test_round": on_test["round"],
                    "test_chosen_macro_f1": on_test["test"]["macro_f1"],
                    **fold_stats.verdict_figures(chosen, majority),
                    **aesthetic.figures(chosen["test"]),
                }
            )
    return out


def cell_summary(records_by_seed: dict[int, list[dict]], num_majority: int) -> dict:
    """One method at one noise level: its units, their mean ± std, the selection's truth."""
    us = units(records_by_seed, num_majority)
    rows = [
        row
        for records in records_by_seed.values()
        for row in selection_truth.truth_rows(records)
        if row["round"] >= 2
    ]
    return {
        "units": us,
        **{
            name: fold_stats.mean_std([u[name] for u in us if u[name] is not None])
            for name in FIGURES + AESTHETIC
        },
        "selection": selection_truth.pooled(rows) if rows else None,
        "kept": study_sweep.kept_shares(records_by_seed, num_majority),
        "paper_protocol": paper_protocol(us),
    }


def paper_protocol(us: list[dict]) -> dict:
    """Test macro F of the round chosen on test (the paper's protocol) over the units, and
    how much it inflates the round chosen on validation's: the paired difference, >= 0 by
    construction, with its 95 % interval."""
    inflation = [u["test_chosen_macro_f1"] - u["macro_f1"] for u in us]
    return {
        "macro_f1": fold_stats.mean_std([u["test_chosen_macro_f1"] for u in us]),
        "inflation": paired_interval(inflation),
    }


def against_reference(cell: dict, reference: dict, method: str = "method") -> dict:
    """Per figure, the paired difference cell - reference over the units both have, and what
    it resolves (`power`)."""
    ref = {(u["seed"], u["fold"]): u for u in reference["units"]}
    seeds = {u["seed"] for u in cell["units"]}
    per_seed = math.ceil(len(cell["units"]) / len(seeds)) if seeds else None
    out = {}
    for name in FIGURES + AESTHETIC:
        diffs = []
        for u in cell["units"]:
            r = ref.get((u["seed"], u["fold"]))
            if r is not None and u[name] is not None and r[name] is not None:
                diffs.append(u[name] - r[name])
        interval = paired_interval(diffs)
        out[name] = {**interval, **power(interval, method, per_seed)}
    return out


def summarize(records: dict, num_majority: int) -> dict:
    """records[noise][method][seed] = that run's metrics.jsonl records ->
    {noise: {method: summary}} (with `diff` to plain when plain is in the study)."""
    out = {}
    for noise, by_method in records.items():
        cells = {m: cell_summary(by_seed, num_majority) for m, by_seed in by_method.items()}
        for method, cell in cells.items():
            cell["diff"] = (
                against_reference(cell, cells[REFERENCE], method)
                if REFERENCE in cells and method != REFERENCE
                else None
            )
        out[f"{noise:g}"] = cells
    return out
