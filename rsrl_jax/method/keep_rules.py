"""The keep masks over D that the selections compute, one rule each: RSRL's (paper eqs.
1-3, `keep_mask`; its quantile form and floor, `rsrl_keep`), the hardness baseline's, and
random_drop's draw of RSRL's class sizes at random (the control).

Pure numpy/jnp: the previous round's outputs on D in, a bool mask over D out;
`method.selection.next_training_set` picks the rule a config names.
"""

import jax
import jax.numpy as jnp
import numpy as np

# The spawn key of random_drop's generator: its draws are a stream of their own, apart from
# the epoch orders drawn from (seed, fold, round) (`method.sampling`).
RANDOM_DROP_STREAM = 1


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
