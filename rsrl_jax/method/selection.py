"""Which samples of D the next round trains on: RSRL's self-revision rule (paper eqs. 1-3)
and the selections it is compared with (`method.selection`).

Pure numpy/jnp: the engine passes the previous round's outputs on D in, a mask over D out.

The rules' keep masks are `method.keep_rules`'; here the majority classes they thin, the
rules in words (for the log and the report) and the one warning about what they keep.
"""

import numpy as np

from rsrl_jax.method import confident_learning, keep_rules

SELECTIONS = ("rsrl", "none", "hardness", "random_drop", "confident_learning")  # method.selection
# method.random_drop_rule: the rule whose per-class counts random_drop draws at random
RANDOM_DROP_RULES = ("rsrl", "confident_learning")


def majority_classes(labels: np.ndarray, num_classes: int, num_majority: int) -> np.ndarray:
    """The `num_majority` classes with most samples, largest first (s_max1, s_max2, ...).

    Ranked once from the counts of the original training set D (`largest_classes`).
    """
    return largest_classes(np.bincount(np.asarray(labels), minlength=num_classes), num_majority)


def largest_classes(counts, num_majority: int) -> np.ndarray:
    """int32 [num_majority]: the indices of the largest `counts` [C], largest first.

    Ties go to the lower class index so the ranking is deterministic.
    """
    counts = np.asarray(counts)
    order = np.lexsort((np.arange(len(counts)), -counts))  # by count desc, then index asc
    return order[:num_majority].astype(np.int32)


def rule_text(rsrl, selection: str = "rsrl") -> str:
    """The RSRL rule of the config section `rsrl` in words, for the log and the report; for
    `selection='random_drop'`, the random draw of as many as that rule keeps."""
    own = f"own-class {rsrl.likelihood} likelihood"
    if rsrl.drop_quantile > 0:
        text = (
            f"{own} >= its class's {rsrl.drop_quantile:g}-quantile over D "
            f"(rsrl.drop_quantile={rsrl.drop_quantile:g})"
        )
    else:
        ks = ", ".join(f"{k:g}" for k in rsrl.thresholds[: rsrl.num_majority])
        text = f"{own} >= K=({ks}) (the paper's rule)"
    if rsrl.min_keep_per_class > 0:
        text += f", topped up to rsrl.min_keep_per_class={rsrl.min_keep_per_class}"
    if selection == "random_drop":
        text = (
            f"as many photos of each majority class as RSRL's rule keeps ({text}), drawn at "
            "random within the class (method.selection='random_drop')"
        )
    return text


def cl_rule_text(method) -> str:
    """Confident learning's rule (`method.selection='confident_learning'`) in words, for the
    log and the report; for random_drop at its counts, the random draw of as many."""
    text = (
        "every photo but cleanlab's label issues (find_label_issues, "
        f"filter_by={method.cl_filter_by!r}) of the majority classes, on out-of-sample "
        f"probabilities from {method.cl_folds} copies of the round's network, each fine-tuned "
        f"{method.cl_epochs} epoch(s) on the other {method.cl_folds - 1} parts of D"
    )
    if method.selection == "random_drop":
        text = (
            f"as many photos of each majority class as confident learning keeps ({text}), "
            "drawn at random within the class (method.selection='random_drop')"
        )
    return text


def remedies(rsrl) -> str:
    """The documented options that keep more of a majority class, with their current values.

    With `rsrl.drop_quantile` already on, the advice is a smaller q, not the option itself.
    """
    floor = (
        f"rsrl.min_keep_per_class=N (now {rsrl.min_keep_per_class}) keeps at least the N most "
        "likely photos of each majority class; "
    )
    if rsrl.drop_quantile:
        return floor + (
            f"a smaller rsrl.drop_quantile (now {rsrl.drop_quantile:g}) drops a smaller share "
            "of each majority class"
        )
    return floor + (
        "rsrl.drop_quantile=q (now 0), 0 < q < 1, drops only the photos below the q-quantile "
        "of their class's likelihoods over D (about a share q of each majority class) instead "
        "of comparing with K"
    )


def majority_counts(keep, labels, majority, class_scores) -> list[tuple[int, int, int]]:
    """[(score, kept, of)] per majority class, largest first: of = its samples in D."""
    keep, labels = np.asarray(keep, bool), np.asarray(labels)
    return [
        (class_scores[c], int(keep[labels == c].sum()), int(np.sum(labels == c))) for c in majority
    ]


def short_of_batch(kept: int, of: int, batch_size: int) -> bool:
    """Whether a selection left a class below one batch: kept < min(batch_size, of). A class of
    D smaller than a batch is short only when the selection drops some of it."""
    return kept < min(batch_size, of)


def selection_warning(
    fold, round_, counts, batch_size, trains_on, d_size, rsrl, selection: str = "rsrl"
) -> str | None:
    """One line when the selection for round `round_` keeps no photo, or fewer than one batch,
    of a majority class (`short_of_batch`), else None.

    `counts`: [(score, kept, of)] per majority class (`majority_counts`); `trains_on`: the
    round's training set size; `d_size`: |D|; `rsrl`: the config section (the rule, remedies);
    `selection`: 'rsrl' or 'random_drop' (`rule_text`).
    """
    short = [(s, k, n) for s, k, n in counts if short_of_batch(k, n, batch_size)]
    if not short:
        return None

    def scores(group):
        return f"score{'s' if len(group) > 1 else ''} {', '.join(str(s) for s, _, _ in group)}"

    emptied, few = [c for c in short if c[1] == 0], [c for c in short if c[1] > 0]
    what = []
    if emptied:
        what.append(f"no photo of {scores(emptied)}")
    if few:
        what.append(f"fewer than one batch ({batch_size}) of {scores(few)}")
    per_class = ", ".join(f"{s}: {k}/{n}" for s, k, n in counts)
    return (
        f"fold {fold} round {round_}: the selection keeps {' and '.join(what)} (kept/of per "
        f"majority score: {per_class}; rule: {rule_text(rsrl, selection)}); round {round_} "
        f"trains on {trains_on} of {d_size} photos of D. To keep more: {remedies(rsrl)}"
    )


def needs_cross_fit(method) -> bool:
    """Whether the selection of the config section `method` needs out-of-sample probabilities
    over D (`engine.cross_fit`): confident learning's, and random_drop at its counts."""
    return method.selection == "confident_learning" or (
        method.selection == "random_drop" and method.random_drop_rule == "confident_learning"
    )


def next_training_set(
    config,
    d_logits,
    d_labels,
    num_classes,
    class_scores,
    majority,
    thresholds,
    fold,
    round_,
    pred_probs=None,
) -> tuple[np.ndarray, list[str]]:
    """(keep mask over D, warnings): the samples of D that round `round_` trains on.

    `method.selection='rsrl'`: `keep_rules.rsrl_keep` on the previous round's logits over
    all of D [N, C]. `'random_drop'`: as many samples of each majority class as `rsrl_keep`
    keeps, drawn at random (`random_keep`, generator `random_drop_rng(seed, fold, round_)`). The
    warnings of both are at most one line, `selection_warning`. A baseline selection ('none',
    'hardness') takes its own rule, without warnings (the rsrl.* fields do not apply to it).
    `'confident_learning'`: `confident_learning_keep` on `pred_probs` [N, C], out-of-sample
    probabilities over D (`engine.cross_fit`), warned only where cleanlab may not flag all of a
    majority class (too few photos: one line a round); random_drop draws its counts
    with `method.random_drop_rule='confident_learning'`.
    """
    d_labels = np.asarray(d_labels)
    selection, method = config.method.selection, config.method
    if needs_cross_fit(method):
        if pred_probs is None:
            raise ValueError(f"method.selection={selection!r} needs out-of-sample pred_probs")
        keep, few = confident_learning.confident_learning_keep(
            pred_probs, d_labels, majority, method.cl_filter_by, class_scores
        )
        if selection == "random_drop":
            keep = keep_rules.random_keep(
                keep, d_labels, majority, keep_rules.random_drop_rng(config.seed, fold, round_)
            )
        return keep, [f"fold {fold} round {round_}: {few}"] if few else []
    if selection not in ("rsrl", "random_drop"):
        keep = keep_rules.baseline_keep(
            selection, d_logits, d_labels, num_classes, config.method.hardness_target
        )
        return keep, []
    rsrl = config.rsrl
    keep = keep_rules.rsrl_keep(rsrl, d_logits, d_labels, majority, thresholds)
    if selection == "random_drop":
        keep = keep_rules.random_keep(
            keep, d_labels, majority, keep_rules.random_drop_rng(config.seed, fold, round_)
        )
    counts = majority_counts(keep, d_labels, majority, class_scores)
    warning = selection_warning(
        fold,
        round_,
        counts,
        config.train.batch_size,
        int(keep.sum()),
        len(d_labels),
        rsrl,
        selection,
    )
    return keep, [warning] if warning else []
