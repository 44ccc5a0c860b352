"""Which samples of D the next round trains on: RSRL's self-revision rule (paper eqs. 1-3)
and the selections it is compared with (`method.selection`).

Pure numpy/jnp: the engine passes the previous round's outputs on D in, a mask over D out.

Over 300 lines: every selection rule and the one warning about what they keep, so that the
rules are compared on one page; not yet split (issue 32, item 4): the seam is the rules
(keep_mask .. baseline_keep) vs their words (rule_text .. selection_warning).
"""

import jax
import jax.numpy as jnp
import numpy as np

from rsrl_jax.method import confident_learning

SELECTIONS = ("rsrl", "none", "hardness", "random_drop", "confident_learning")  # method.selection
# method.random_drop_rule: the rule whose per-class counts random_drop draws at random
RANDOM_DROP_RULES = ("rsrl", "confident_learning")
# The spawn key of random_drop's generator: its draws are a stream of their own, apart from
# the epoch orders drawn from (seed, fold, round) (`method.sampling`).
RANDOM_DROP_STREAM = 1


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


def keep_mask(likelihood, labels, majority, thresholds):
    """keep(x, y) = y is not a majority class, or likelihood[x, y] >= K_rank(y).

    Args:
      likelihood: [N, C] per-class likelihoods (sigmoid of the logits in the paper).
      labels: [N] integer class of each sample.
      majority: [M] class indices s_max1..s_maxM.
      thresholds: [M] K1..KM, thresholds[r] applies to majority[r].

    Returns:
      bool [N]; minority samples are always kept. Jittable.
    """
    likelihood = jnp.asarray(likelihood)
    labels = jnp.asarray(labels)
    majority = jnp.asarray(majority)
    thresholds = jnp.asarray(thresholds, likelihood.dtype)
    own = jnp.take_along_axis(likelihood, labels[:, None], axis=1)[:, 0]
    is_rank = labels[:, None] == majority[None, :]  # [N, M]
    is_majority = is_rank.any(axis=1)
    # Threshold of the sample's own rank; unused (masked) for minority samples.
    threshold = jnp.sum(jnp.where(is_rank, thresholds[None, :], 0.0), axis=1)
    return jnp.logical_or(~is_majority, own >= threshold)


def quantile_keep(own_likelihood, labels, majority, quantile: float) -> np.ndarray:
    """keep(x, y) = y is not a majority class, or own[x] >= the `quantile`-quantile of own over
    the samples of class y (`rsrl.drop_quantile`: a threshold relative to each class's own
    distribution, in place of the paper's absolute K of eqs. 1-3).

    Args:
      own_likelihood: [N] each sample's likelihood of its own class.
      labels: [N] integer class of each sample.
      majority: [M] class indices; every other class is kept whole.
      quantile: q in (0, 1).

    Returns:
      bool [N]. The threshold is numpy's quantile with linear interpolation, in float64, of
      the class's likelihoods; a sample AT the threshold is kept (>=, as with K), so ties keep
      more: a class drops about a share q of its samples, fewer when likelihoods tie at the
      threshold, and never all of them (its most likely sample reaches any q < 1).
    """
    own = np.asarray(own_likelihood, np.float64)
    labels = np.asarray(labels)
    keep = np.ones(len(labels), bool)
    for c in np.asarray(majority):
        members = labels == c
        if members.any():
            keep[members] = own[members] >= np.quantile(own[members], quantile)
    return keep


def keep_at_least(keep, own_likelihood, labels, classes, min_keep: int) -> np.ndarray:
    """`keep`, topped up so each class in `classes` keeps min(min_keep, its size) samples.

    The samples added back are the class's most likely ones (by `own_likelihood`, the
    likelihood of each sample for its own class; ties to the lower index). min_keep = 0
    returns `keep` unchanged. Applied after either rule (K or `quantile_keep`): a floor on
    what the rule keeps.
    """
    keep = np.array(keep, bool)
    if min_keep <= 0:
        return keep
    for c in classes:
        members = np.flatnonzero(labels == c)
        missing = min(min_keep, len(members)) - int(keep[members].sum())
        if missing > 0:
            dropped = members[~keep[members]]
            best = dropped[np.argsort(-own_likelihood[dropped], kind="stable")[:missing]]
            keep[best] = True
    return keep


def hardness_keep(own_probability, labels, num_classes: int, target: int = 0) -> np.ndarray:
    """imbalanced-learn's InstanceHardnessThreshold rule, on given probabilities.

    With its default sampling strategy ('auto' = every class but the minority one), each
    class c other than the smallest of `labels` (on ties the lowest index; imbalanced-learn
    takes the first it meets) is reduced towards n samples, n = `target` or, when 0, the size
    of the smallest class: it keeps its samples whose probability of their own class reaches
    the (1 - n / n_c) percentile of the class's (numpy's linear interpolation; ties at the
    threshold are kept, so a class may keep a few more than n). Classes of at most n samples
    are kept whole. imbalanced-learn takes the probabilities from a cross-validated
    classifier; here they are the network's.
    """
    p = np.asarray(own_probability, np.float64)
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=num_classes)
    present = np.flatnonzero(counts)
    keep = np.ones(len(labels), bool)
    if len(present) == 0:
        return keep
    minority = present[np.argmin(counts[present])]
    n = target if target > 0 else int(counts[minority])
    for c in present:
        if c == minority or counts[c] <= n:
            continue
        members = labels == c
        threshold = np.percentile(p[members], (1.0 - n / counts[c]) * 100.0)
        keep[members] = p[members] >= threshold
    return keep


def random_keep(rule_keep, labels, majority, rng: np.random.Generator) -> np.ndarray:
    """A keep mask with exactly as many samples of each class in `majority` as `rule_keep`
    keeps of it, chosen uniformly at random (without replacement) within the class; every
    other class is kept whole.

    The control that separates RSRL's choice of samples from the mere shrinking of the
    majority classes (`method.selection='random_drop'`): the same class sizes per round as
    RSRL's rule, none of its choice.

    Args:
      rule_keep: bool [N], the rule's keep mask (RSRL's, `rsrl_keep`).
      labels: [N] integer class of each sample.
      majority: [M] class indices, drawn in this order from `rng`.
      rng: the round's generator (`random_drop_rng`).

    Returns:
      bool [N]; per majority class c: sum(keep[labels == c]) == sum(rule_keep[labels == c]).
    """
    rule_keep, labels = np.asarray(rule_keep, bool), np.asarray(labels)
    keep = np.ones(len(labels), bool)
    for c in np.asarray(majority):
        members = np.flatnonzero(labels == c)
        keep[members] = False
        keep[rng.choice(members, size=int(rule_keep[members].sum()), replace=False)] = True
    return keep


def random_drop_rng(seed: int, fold: int, round_: int) -> np.random.Generator:
    """random_drop's generator for the selection of round `round_` of `fold`: a function of
    (seed, fold, round) only (the same in every process), its own stream (RANDOM_DROP_STREAM)."""
    sequence = np.random.SeedSequence([seed, fold, round_], spawn_key=(RANDOM_DROP_STREAM,))
    return np.random.default_rng(sequence)


def baseline_keep(selection: str, d_logits, d_labels, num_classes: int, target: int = 0):
    """The next round's training set for the baselines that ignore the rsrl.* fields.

    `none`: all of D every round (plain fine-tuning, round after round, on the same budget).
    `hardness`: `hardness_keep` on the softmax probability (imbalanced-learn's
    `predict_proba`) that the previous round's network gives each sample's own class.
    """
    d_labels = np.asarray(d_labels)
    if selection == "none":
        return np.ones(len(d_labels), bool)
    if selection == "hardness":
        prob = np.asarray(jax.nn.softmax(np.asarray(d_logits, np.float32), axis=-1))
        own = prob[np.arange(len(d_labels)), d_labels]
        return hardness_keep(own, d_labels, num_classes, target)
    raise ValueError(f"no baseline selection {selection!r}: 'none' or 'hardness'")


def likelihoods(logits, kind: str) -> np.ndarray:
    """Per-class likelihoods [N, C] of logits [N, C]: the paper's sigmoidal fuzzy membership
    of fc (`sigmoid`, section III) or `softmax`."""
    logits = jnp.asarray(logits)
    if kind == "sigmoid":
        return np.asarray(jax.nn.sigmoid(logits))
    if kind == "softmax":
        return np.asarray(jax.nn.softmax(logits, axis=-1))
    raise ValueError(f"unknown likelihood {kind!r}")


_keep_mask = jax.jit(keep_mask)


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


def rsrl_keep(rsrl, d_logits, d_labels, majority, thresholds) -> np.ndarray:
    """RSRL's keep mask over D (bool [N]) from the previous round's logits over D [N, C]: the
    paper's rule (eqs. 1-3: own-class likelihood >= K_r) or, with `rsrl.drop_quantile` > 0,
    `quantile_keep`; then topped up to `rsrl.min_keep_per_class` per majority class.
    `rsrl`: the config section."""
    d_labels = np.asarray(d_labels)
    lik = likelihoods(d_logits, rsrl.likelihood)
    own = lik[np.arange(len(d_labels)), d_labels]
    if rsrl.drop_quantile > 0:
        rule = quantile_keep(own, d_labels, majority, rsrl.drop_quantile)
    else:
        rule = np.asarray(_keep_mask(lik, d_labels, majority, thresholds))
    return keep_at_least(rule, own, d_labels, majority, rsrl.min_keep_per_class)


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

    `method.selection='rsrl'`: `rsrl_keep` on the previous round's logits over all of D
    [N, C]. `'random_drop'`: as many samples of each majority class as `rsrl_keep` keeps,
    drawn at random (`random_keep`, generator `random_drop_rng(seed, fold, round_)`). The
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
            keep = random_keep(keep, d_labels, majority, random_drop_rng(config.seed, fold, round_))
        return keep, [f"fold {fold} round {round_}: {few}"] if few else []
    if selection not in ("rsrl", "random_drop"):
        keep = baseline_keep(
            selection, d_logits, d_labels, num_classes, config.method.hardness_target
        )
        return keep, []
    rsrl = config.rsrl
    keep = rsrl_keep(rsrl, d_logits, d_labels, majority, thresholds)
    if selection == "random_drop":
        keep = random_keep(keep, d_labels, majority, random_drop_rng(config.seed, fold, round_))
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
