"""What a selection removes, where the truth is known: the mislabelled shares of the kept and
the dropped photos of each majority class.

On synthetic data the noiseless rater's class of every photo is known (`Dataset.true_labels`:
the rank cut of the latent quality, `data.synthetic.noiseless_scores`); a photo whose label
differs from it is mislabelled. RSRL's premise (paper §III) is that the photos it drops are
the doubtful ones: here that reads as a dropped set more often mislabelled than the kept set
and than chance: a selection blind to the labels' quality, such as
`method.selection='random_drop'`, drops mislabelled photos at the class's own share (pooled
over classes: weighted by the photos dropped from each).

`selection_record` makes a round's `metrics.jsonl` field `selection`; `truth_rows`,
`pooled`, `sentence` and `plot` read it back for the report.
"""

import numpy as np

FIGURE = "selection_mislabelled.png"  # the report's figure, drawn only when records carry it
SETS = ("dropped", "kept", "chance")


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def selection_record(keep, labels, true_labels, majority, class_scores) -> dict:
    """{score: {kept, dropped, kept_mislabelled_share, dropped_mislabelled_share,
    chance_mislabelled_share}} per majority class (largest first) of one selection.

    Args:
      keep: bool [N], the selection over D that built a round's training set.
      labels: int [N], the classes of D's photos as the rater scored them.
      true_labels: int [N], the classes a rater without noise gives them.
      majority: [M] class indices, largest first.
      class_scores: [C] the score of each class.

    A share is mislabelled / photos of that set (None when the set is empty); the chance
    share is the class's mislabelled share over all of D.
    """
    keep, labels = np.asarray(keep, bool), np.asarray(labels)
    wrong = labels != np.asarray(true_labels)
    out = {}
    for c in np.asarray(majority):
        members = labels == c
        kept, dropped = members & keep, members & ~keep
        out[str(class_scores[c])] = {
            "kept": int(kept.sum()),
            "dropped": int(dropped.sum()),
            "kept_mislabelled_share": _share(int(wrong[kept].sum()), int(kept.sum())),
            "dropped_mislabelled_share": _share(int(wrong[dropped].sum()), int(dropped.sum())),
            "chance_mislabelled_share": _share(int(wrong[members].sum()), int(members.sum())),
        }
    return out


def _count(share: float | None, n: int) -> int:
    """The mislabelled count behind a recorded share of n photos."""
    return 0 if share is None else round(share * n)


def truth_rows(records: list[dict]) -> list[dict]:
    """One row per (fold, round, majority score) of the records that carry `selection`:
    `fold`, `round`, `score`, and per set (dropped, kept, chance = all of the class in D) its
    photos `n_<set>` and mislabelled photos `m_<set>`."""
    rows = []
    for r in sorted(records, key=lambda r: (r["fold"], r["round"])):
        for score, s in r.get("selection", {}).items():
            whole = s["kept"] + s["dropped"]
            rows.append(
                {
                    "fold": r["fold"],
                    "round": r["round"],
                    "score": score,
                    "n_dropped": s["dropped"],
                    "m_dropped": _count(s["dropped_mislabelled_share"], s["dropped"]),
                    "n_kept": s["kept"],
                    "m_kept": _count(s["kept_mislabelled_share"], s["kept"]),
                    "n_chance": whole,
                    "m_chance": _count(s["chance_mislabelled_share"], whole),
                }
            )
    return rows


def pooled(rows: list[dict]) -> dict[str, float | None]:
    """{set: mislabelled share} of `rows` pooled (photos summed over folds, rounds, classes).

    `chance` is what a selection blind to the labels' quality would drop: each row's class
    share in D, weighted by the photos dropped from it (so pooling classes with different
    shares and drop rates does not read as a preference; random_drop's expectation). With
    nothing dropped, the classes' share in D.
    """
    out = {
        name: _share(sum(r[f"m_{name}"] for r in rows), sum(r[f"n_{name}"] for r in rows))
        for name in ("dropped", "kept")
    }
    dropped = sum(r["n_dropped"] for r in rows)
    if dropped:
        expected = sum(
            r["n_dropped"] * r["m_chance"] / r["n_chance"] for r in rows if r["n_chance"]
        )
        out["chance"] = expected / dropped
    else:
        out["chance"] = _share(sum(r["m_chance"] for r in rows), sum(r["n_chance"] for r in rows))
    return out


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.0f} %"


def sentence(records: list[dict]) -> str | None:
    """One sentence on the selections of rounds >= 2: the mislabelled share of the majority
    photos they drop, of those they keep, and chance; None when the records carry no truth."""
    rows = [r for r in truth_rows(records) if r["round"] >= 2]
    if not rows:
        return None
    share = pooled(rows)
    rounds = sorted({r["round"] for r in rows})
    span = f"round {rounds[0]}" if len(rounds) == 1 else f"rounds {rounds[0]}-{rounds[-1]}"
    folds = len({r["fold"] for r in rows})
    where = f"{span}{', all ' + str(folds) + ' folds' if folds > 1 else ''}"
    truth = "Where the truth is known (the noiseless rater's scores of the synthetic photos)"
    if share["dropped"] is None:
        return (
            f"{truth}, the selections of {where} drop no majority-class photo; "
            f"{_pct(share['kept'])} of those kept are mislabelled (chance: "
            f"{_pct(share['chance'])})."
        )
    return (
        f"{truth}, {_pct(share['dropped'])} of the majority-class photos the selections of "
        f"{where} drop are mislabelled, against {_pct(share['kept'])} of those they keep; "
        f"chance (a drop blind to the labels, as many photos from each class) is "
        f"{_pct(share['chance'])}."
    )


def plot(records: list[dict], path: str) -> bool:
    """Per round, the mislabelled share of the dropped set, the kept set and chance, pooled
    over the majority classes (first panel) and per majority score, photos summed over
    folds. Writes `path`; False (nothing drawn) when `sentence` has nothing to say."""
    from rsrl_jax.analysis.figures import fit_y, legend_below, new_figure

    rows = truth_rows(records)
    if sentence(records) is None:  # no truth, or no selection yet (round 1 only)
        return False
    rounds = sorted({r["round"] for r in rows})
    scores = list(dict.fromkeys(r["score"] for r in rows))
    panels = [("pooled majority classes", rows)]
    panels += [(f"score {s}", [r for r in rows if r["score"] == s]) for s in scores]
    panels = [(title, part) for title, part in panels if _has_share(part, rounds)]
    fig = new_figure(3.2 * len(panels), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
    styles = {"dropped": ("o-", "dropped"), "kept": ("s-", "kept"), "chance": ("k:", "chance")}
    for ax, (title, part) in zip(axes, panels, strict=True):
        for name in SETS:
            values = [pooled([r for r in part if r["round"] == n])[name] for n in rounds]
            y = [np.nan if v is None else v for v in values]
            style, label = styles[name]
            ax.plot(rounds, y, style, markersize=4, label=label)
        ax.set(title=title, xlabel="round")
        ax.set_xticks(rounds)
        ax.grid(alpha=0.3)
    fit_y(list(axes), 0, 1)
    axes[0].set_ylabel("mislabelled share")
    fig.suptitle(
        "Mislabelled photos (score differs from the noiseless rater's) in what each round's "
        "selection dropped and kept",
        fontsize=9,
    )
    legend_below(fig, axes[0])
    fig.savefig(path, dpi=100)
    return True


def _has_share(rows: list[dict], rounds: list[int]) -> bool:
    """Whether a panel of `rows` has a share to draw in any round (a class none of whose
    rounds has a photo in any set gets no panel: it would be empty)."""
    return any(
        v is not None for n in rounds for v in pooled([r for r in rows if r["round"] == n]).values()
    )
