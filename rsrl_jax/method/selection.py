"""Which samples of D the next round trains on: RSRL's self-revision rule (paper eqs. 1-3)
and the selections it is compared with (`method.selection`).

Pure numpy/jnp: the engine passes the previous round's outputs on D in, a mask over D out.
"""

import jax
import jax.numpy as jnp
import numpy as np

SELECTIONS = ("rsrl", "none", "hardness")  # method.selection


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


def keep_at_least(keep, own_likelihood, labels, classes, min_keep: int) -> np.ndarray:
    """`keep`, topped up so each class in `classes` keeps min(min_keep, its size) samples.

    The samples added back are the class's most likely ones (by `own_likelihood`, the
    likelihood of each sample for its own class). min_keep = 0 returns `keep` unchanged.
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


def baseline_keep(selection: str, d_logits, d_labels, num_classes: int, target: int = 0):
    """The next round's training set for the selections other than RSRL's.

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
    raise ValueError(f"no baseline selection {selection!r}: one of {SELECTIONS[1:]}")


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


def next_training_set(
    config, d_logits, d_labels, num_classes, class_scores, majority, thresholds, fold, round_
) -> tuple[np.ndarray, list[str]]:
    """(keep mask over D, warnings): the samples of D that round `round_` trains on.

    `method.selection='rsrl'`: the paper's rule (eqs. 1-3) on the previous round's logits
    over all of D [N, C], topped up to `rsrl.min_keep_per_class` per majority class; each
    warning names a majority class the rule emptied or cut below that minimum. A baseline
    selection ('none', 'hardness') takes its own rule, without warnings.
    """
    d_labels = np.asarray(d_labels)
    if config.method.selection != "rsrl":
        keep = baseline_keep(
            config.method.selection, d_logits, d_labels, num_classes, config.method.hardness_target
        )
        return keep, []
    lik = likelihoods(d_logits, config.rsrl.likelihood)
    rule = np.asarray(_keep_mask(lik, d_labels, majority, thresholds))
    own = lik[np.arange(len(d_labels)), d_labels]
    min_keep = config.rsrl.min_keep_per_class
    keep = keep_at_least(rule, own, d_labels, majority, min_keep)
    warnings = []
    for c in majority:
        n, by_rule = int(np.sum(d_labels == c)), int(np.sum(rule[d_labels == c]))
        if by_rule < min(min_keep, n) or by_rule == 0:
            warnings.append(
                f"fold {fold} round {round_}: selection keeps {by_rule} of {n} samples of "
                f"score {class_scores[c]}; rsrl.min_keep_per_class={min_keep} makes it "
                f"{int(np.sum(keep[d_labels == c]))}"
            )
    return keep, warnings
