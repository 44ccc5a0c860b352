"""Training losses for imbalanced classes, the baselines RSRL is compared with.

The train step computes ONE loss, `general`, from a lane's terms (`loss_terms`: class
weights, logit offsets, focal gamma, the EMD switch): plain, weighted, focal and
logit-adjusted cross-entropy and NIMA's earth mover's distance are values of those terms, so
lanes with different losses share one compiled program (`rsrl_jax.engine.rounds`). The
specific losses below are its references.

Every loss is `loss(logits [B, C], labels [B], mask [B], class_terms) -> scalar`, the mean
over the unmasked samples of the batch (padding has mask 0 and contributes nothing), as
`train.softmax_cross_entropy`. `class_terms` holds [C] arrays computed from the fold's
training set D (`class_terms(counts, method)`): they enter the jitted step as arguments, not
constants, so a new fold with other class counts does not recompile the step.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

LOSSES = ("cross_entropy", "weighted_cross_entropy", "focal", "logit_adjusted", "emd")
CLASS_WEIGHTS = ("inverse_frequency", "effective_number")


def masked_mean(values, mask):
    """Mean of `values` over the samples with mask 1 (0 for an all-padding batch)."""
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def cross_entropy(logits, labels, mask):
    """Plain softmax cross-entropy: the paper's loss."""
    return masked_mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels), mask)


def weighted_cross_entropy(logits, labels, mask, weights):
    """w_y · CE(x, y), averaged over the unmasked samples.

    With weights normalised to sum to the number of classes (`class_weights`), a balanced
    batch keeps the scale of plain cross-entropy (Cui et al. 2019, eq. 5).
    """
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return masked_mean(weights[labels] * ce, mask)


def focal(logits, labels, mask, gamma: float):
    """Softmax focal loss -(1 - p_y)^gamma log p_y (Lin et al. 2017, multi-class form).

    The factor is exp(gamma · log(1 - p_y)) with log(1 - p_y) taken from the other classes'
    logits, so it and its gradient stay finite when p_y rounds to 1 (gamma < 1 included).
    """
    log_p = jax.nn.log_softmax(logits, axis=-1)
    log_p_y = jnp.take_along_axis(log_p, labels[:, None], axis=-1)[:, 0]
    others = jnp.where(jax.nn.one_hot(labels, logits.shape[-1], dtype=bool), -jnp.inf, logits)
    log_not_y = jax.nn.logsumexp(others, axis=-1) - jax.nn.logsumexp(logits, axis=-1)
    return masked_mean(-jnp.exp(gamma * log_not_y) * log_p_y, mask)


def logit_adjusted(logits, labels, mask, adjustment):
    """Cross-entropy of logits + tau·log(prior) (Menon et al. 2021, eq. 10).

    Training against the prior-shifted logits makes the plain logits, used for prediction,
    estimate the balanced posterior.
    """
    return cross_entropy(logits + adjustment, labels, mask)


def _sqrt(x):
    """sqrt with a zero gradient at 0 (not inf): a certain, correct prediction's EMD is 0."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def emd_per_sample(logits, targets):
    """NIMA's EMD of each sample [B]: sqrt(mean_k (CDF_p(k) - CDF_t(k))^2) over the C classes.

    p = softmax(logits) [B, C]; `targets` [B, C] a distribution over the same ordered
    classes (a one-hot label, or a label distribution such as AVA's votes). Talebi and
    Milanfar, "NIMA: Neural Image Assessment", IEEE TIP 2018, eq. (1) with r = 2: classes
    one unit apart, the mean over all C CDF terms (the last is 1 - 1 = 0 but counts in C).
    """
    cdf_p = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)
    cdf_t = jnp.cumsum(targets, axis=-1)
    return _sqrt(jnp.mean(jnp.square(cdf_p - cdf_t), axis=-1))


def emd(logits, labels, mask):
    """NIMA's squared-EMD loss (r = 2) of one-hot labels, averaged over the unmasked samples.

    The classes are the data's scores in increasing order (`dataset.from_scores`), so the
    class axis is the score axis; a prediction one score off costs less than one far off,
    which cross-entropy does not see.
    """
    one_hot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    return masked_mean(emd_per_sample(logits, one_hot), mask)


def general(logits, labels, mask, terms):
    """w_y · (1 - p_y)^gamma · CE(logits + adjustment, y), averaged over the unmasked samples.

    `terms` (`loss_terms`): `weight` [C] (ones: unweighted), `adjustment` [C] (zeros: no
    offsets), `gamma` [] (0: no focal factor). The focal factor is exp(gamma · log(1 - p_y))
    with log(1 - p_y) from the other classes' logits (`focal`), and exactly 1, with a zero
    gradient, where gamma = 0 (its log is then not taken: no 0 · inf), so gamma = 0 is
    cross-entropy and stays finite when p_y rounds to 1. `emd` [] (1: the loss is `emd`
    of the raw logits instead; 0: the cross-entropy above): a per-sample select, so both
    kinds of lane run one program, and the unselected side adds an exact zero gradient.
    """
    z = logits + terms["adjustment"]
    log_p = jax.nn.log_softmax(z, axis=-1)
    log_p_y = jnp.take_along_axis(log_p, labels[:, None], axis=-1)[:, 0]
    gamma = terms["gamma"]
    others = jnp.where(jax.nn.one_hot(labels, z.shape[-1], dtype=bool), -jnp.inf, z)
    log_not_y = jax.nn.logsumexp(others, axis=-1) - jax.nn.logsumexp(z, axis=-1)
    focused = gamma != 0
    factor = jnp.where(focused, jnp.exp(gamma * jnp.where(focused, log_not_y, 0.0)), 1.0)
    cross = -terms["weight"][labels] * factor * log_p_y
    one_hot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    ordinal = emd_per_sample(logits, one_hot)
    return masked_mean(jnp.where(terms["emd"] != 0, ordinal, cross), mask)


def reference_loss(name: str, focal_gamma: float = 2.0) -> Callable:
    """loss(logits, labels, mask, class_terms) for the loss `name` (one of LOSSES)."""
    if name == "cross_entropy":
        return lambda logits, labels, mask, terms: cross_entropy(logits, labels, mask)
    if name == "weighted_cross_entropy":
        return lambda logits, labels, mask, terms: weighted_cross_entropy(
            logits, labels, mask, terms["weight"]
        )
    if name == "focal":
        return lambda logits, labels, mask, terms: focal(logits, labels, mask, focal_gamma)
    if name == "logit_adjusted":
        return lambda logits, labels, mask, terms: logit_adjusted(
            logits, labels, mask, terms["adjustment"]
        )
    if name == "emd":
        return lambda logits, labels, mask, terms: emd(logits, labels, mask)
    raise ValueError(f"unknown loss {name!r}: must be one of {LOSSES}")


def class_weights(counts, kind: str, beta: float = 0.999) -> np.ndarray:
    """Per-class weights from the class counts of D, summing to the number of classes in D.

    `inverse_frequency`: w_c ∝ 1 / n_c. `effective_number` (Cui et al. 2019): w_c ∝
    (1 - beta) / (1 - beta^n_c), the inverse of the class's effective number of samples;
    beta = 0 weighs all classes alike, beta -> 1 tends to inverse frequency. A class absent
    from D gets weight 0 (no sample of it is ever weighted).
    """
    counts = np.asarray(counts, np.float64)
    present = counts > 0
    n = np.where(present, counts, 1.0)
    if kind == "inverse_frequency":
        raw = 1.0 / n
    elif kind == "effective_number":
        raw = (1.0 - beta) / (1.0 - np.power(beta, n))
    else:
        raise ValueError(f"unknown class weights {kind!r}: must be one of {CLASS_WEIGHTS}")
    raw = np.where(present, raw, 0.0)
    return (raw * present.sum() / raw.sum()).astype(np.float32)


def log_priors(counts) -> np.ndarray:
    """log of the class priors of D; a class absent from D counts as half a sample."""
    counts = np.maximum(np.asarray(counts, np.float64), 0.5)
    return np.log(counts / counts.sum()).astype(np.float32)


def loss_terms(counts, method) -> dict[str, np.ndarray]:
    """The terms of `general` that make it the loss `method.loss` on a training set with
    class counts `counts`: the weights only for weighted_cross_entropy, the offsets only for
    logit_adjusted, gamma only for focal, emd = 1 only for emd (float32; the same shapes for
    every lane)."""
    num_classes = len(counts)
    terms = class_terms(counts, method)
    loss = method.loss
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: must be one of {LOSSES}")
    return {
        "weight": terms["weight"]
        if loss == "weighted_cross_entropy"
        else np.ones(num_classes, np.float32),
        "adjustment": terms["adjustment"]
        if loss == "logit_adjusted"
        else np.zeros(num_classes, np.float32),
        "gamma": np.float32(method.focal_gamma if loss == "focal" else 0.0),
        "emd": np.float32(loss == "emd"),
    }


def class_terms(counts, method) -> dict[str, np.ndarray]:
    """The [C] arrays the losses read, from D's class counts and the `config.method` fields.

    Both are always present (float32), whatever the loss, so the step's signature and
    compiled program are the same for every fold.
    """
    return {
        "weight": class_weights(counts, method.class_weights, method.effective_number_beta),
        "adjustment": (method.logit_adjustment_tau * log_priors(counts)).astype(np.float32),
    }
