"""The report's "Selection" section: what each round kept of the majority classes, read from
the run's `metrics.jsonl` records, and the rounds where a class fell below one batch.

A record's `class_counts` is its round's training set by score, `train.per_class[s].support`
the photos of score s in D (the fold's original training set), so kept / of per class needs no
checkpoint; the majority classes are ranked from D's supports as the run ranked them
(`fold_stats.majority_scores`). Round 1 trains on all of D: selections show from round 2 on.
"""

import json

import ml_collections

from rsrl_jax.analysis import selection_truth
from rsrl_jax.config import base_config
from rsrl_jax.method import selection
from rsrl_jax.metrics import fold_stats

# The paper's round 2 trained on about 500 of its 2480 training photos (the training set size
# per round, paper Fig. 4); the run's round 2 is set beside it.
PAPER_ROUND2 = (500, 2480)


def run_config(config_json: str) -> ml_collections.ConfigDict:
    """The run's config from its config.json text; fields added since keep their defaults."""
    config = base_config()
    config.update(json.loads(config_json))
    return config


def selection_rows(records: list[dict], num_majority: int, batch_size: int) -> list[dict]:
    """One row per (fold, round >= 2), in that order.

    Each row: `fold`, `round`, `counts` [(score, kept, of)] per majority class (largest first),
    `short` (the scores with kept < min(batch_size, of): `selection.short_of_batch`),
    `train_size` (the round's training set) and `d_size` (|D|).
    """
    rows = []
    for r in sorted(records, key=lambda r: (r["fold"], r["round"])):
        if r["round"] < 2:
            continue
        per_class = r["train"]["per_class"]
        counts = [
            (s, int(r["class_counts"][s]), int(per_class[s]["support"]))
            for s in fold_stats.majority_scores(r, num_majority)
        ]
        rows.append(
            {
                "fold": r["fold"],
                "round": r["round"],
                "counts": counts,
                "short": [s for s, k, n in counts if selection.short_of_batch(k, n, batch_size)],
                "train_size": int(r["train_size"]),
                "d_size": sum(int(c["support"]) for c in per_class.values()),
            }
        )
    return rows


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "–"


def round2_sentence(rows: list[dict]) -> str:
    """How much of the majority classes and of D round 2 keeps, beside the paper's round 2."""
    r2 = [row for row in rows if row["round"] == 2]
    kept = [sum(k for _, k, _ in row["counts"]) for row in r2]
    of = [sum(n for _, _, n in row["counts"]) for row in r2]
    trains = [row["train_size"] for row in r2]
    d = [row["d_size"] for row in r2]
    paper = (
        f"the paper's round 2 trained on about {PAPER_ROUND2[0]} of {PAPER_ROUND2[1]} photos "
        f"({_pct(*PAPER_ROUND2)})"
    )
    if len(r2) == 1:
        return (
            f"Round 2 keeps {kept[0]} of {of[0]} majority-class photos ({_pct(kept[0], of[0])}) "
            f"and trains on {trains[0]} of {d[0]} photos of D ({_pct(trains[0], d[0])}); {paper}."
        )
    shares = [100 * k / n for k, n in zip(kept, of, strict=True) if n]
    low, high = (round(min(shares)), round(max(shares))) if shares else (0, 0)
    spread = f"; folds {low}-{high} %" if low != high else ""
    return (
        f"Over its {len(r2)} folds, round 2 keeps {sum(kept)} of {sum(of)} majority-class "
        f"photos ({_pct(sum(kept), sum(of))}{spread}) and trains on {sum(trains)} of "
        f"{sum(d)} photos of D ({_pct(sum(trains), sum(d))}); {paper}."
    )


def section(records: list[dict], config_json: str) -> list[str]:
    """Markdown lines of the report's "Selection" section (no trailing blank line).

    `records`: the run's metrics records; `config_json`: its config.json text (the rule,
    rsrl.num_majority, train.batch_size). States the rule and round 2's share of the majority
    classes and of D beside the paper's; flags each (fold, round) where a majority class kept
    fewer than one batch (or none), naming the remedies; tabulates kept / of per majority
    class for every round from 2 on. Where the records carry the truth (synthetic data, their
    `selection` field), one sentence and the figure `selection_truth.FIGURE` on how often the
    dropped and the kept photos are mislabelled (`selection_truth.sentence`).
    """
    lines = _rule_and_counts(records, config_json)
    truth = selection_truth.sentence(records)
    if truth is not None:
        lines += [
            "",
            truth,
            "",
            f"![mislabelled share of dropped and kept]({selection_truth.FIGURE})",
        ]
    return lines


def _rule_and_counts(records: list[dict], config_json: str) -> list[str]:
    config = run_config(config_json)
    lines = ["## Selection", ""]
    method = config.method.selection
    if method == "none":
        return lines + ["`method.selection='none'`: every round trains on all of D."]
    rsrl, batch_size = config.rsrl, config.train.batch_size
    if selection.needs_cross_fit(config.method):
        rule = (
            f"The {rsrl.num_majority} largest classes of D keep "
            f"{selection.cl_rule_text(config.method)}; the other classes are kept whole."
        )
    elif method == "rsrl":
        rule = (
            f"A photo of the {rsrl.num_majority} largest classes of D is kept when its "
            f"{selection.rule_text(rsrl)}; the other classes are kept whole."
        )
    elif method == "random_drop":
        rule = (
            f"The {rsrl.num_majority} largest classes of D keep "
            f"{selection.rule_text(rsrl, method)}; the other classes are kept whole."
        )
    else:
        rule = (
            f"`method.selection={method!r}` (a baseline's rule); the rsrl.* selection options "
            "do not apply to it."
        )
    lines += [rule, ""]
    rows = selection_rows(records, rsrl.num_majority, batch_size)
    if not rows:
        return lines + ["Only round 1 ran, on all of D: no selection yet."]
    lines += [round2_sentence(rows), ""] if any(r["round"] == 2 for r in rows) else []
    flagged = [row for row in rows if row["short"]]
    if flagged:
        where = ", ".join(f"fold {row['fold']} round {row['round']}" for row in flagged)
        fix = (
            f" To keep more: {selection.remedies(rsrl)}."
            if method in ("rsrl", "random_drop") and not selection.needs_cross_fit(config.method)
            else ""
        )
        lines += [
            f"**Warning: {len(flagged)} of {len(rows)} selections keep fewer than one batch "
            f"({batch_size}) of a majority class, or none** (in bold below: {where}); those "
            f"rounds train on few or no photos of that class.{fix}",
            "",
        ]
    else:
        lines += [
            f"Every selection keeps at least one batch ({batch_size}) of each majority "
            "class (or all of a smaller one).",
            "",
        ]
    scores = list(dict.fromkeys(s for row in rows for s, _, _ in row["counts"]))
    lines += [
        "| fold | round | "
        + " | ".join(f"score {s} kept / of" for s in scores)
        + " | majority kept / of | training set / D |",
        "| --- | --- | " + " | ".join("---" for _ in scores) + " | --- | --- |",
    ]
    for row in rows:
        by_score = {s: (k, n) for s, k, n in row["counts"]}
        cells = []
        for s in scores:
            if s not in by_score:
                cells.append("–")  # not a majority class of this fold's D
                continue
            cell = f"{by_score[s][0]} / {by_score[s][1]}"
            cells.append(f"**{cell}**" if s in row["short"] else cell)
        kept = sum(k for _, k, _ in row["counts"])
        of = sum(n for _, _, n in row["counts"])
        lines.append(
            f"| {row['fold']} | {row['round']} | {' | '.join(cells)} | {kept} / {of} | "
            f"{row['train_size']} / {row['d_size']} |"
        )
    return lines
