"""RSRL's self-revision rule: which training samples round i keeps (paper eqs. 1-3)."""

import jax
import jax.numpy as jnp
import numpy as np

from rsrl_jax.method import sampling


def majority_classes(labels: np.ndarray, num_classes: int, num_majority: int) -> np.ndarray:
    """The `num_majority` classes with most samples, largest first (s_max1, s_max2, ...).

    Ranked once from the counts of the original training set D. Ties go to the lower class
    index so the ranking is deterministic.
    """
    counts = np.bincount(np.asarray(labels), minlength=num_classes)
    order = np.lexsort((np.arange(num_classes), -counts))  # by count desc, then index asc
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
        keep = sampling.baseline_keep(
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
