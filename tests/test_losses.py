"""The imbalance losses against hand computations (numpy) and optax, with padding masks."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rsrl_jax.engine import train
from rsrl_jax.method import losses

LOGITS = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-2.0, 3.0, 0.0], [1.0, 1.0, 1.0]])
LABELS = np.array([0, 2, 1, 1])
MASK = np.array([1.0, 1.0, 1.0, 0.0])  # the last sample is padding


def np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def own_log_p(logits=LOGITS, labels=LABELS):
    return np_log_softmax(logits)[np.arange(len(labels)), labels]


def masked(values, mask=MASK):
    return float((values * mask).sum() / mask.sum())


def test_cross_entropy_is_the_mean_over_unmasked_samples():
    got = losses.cross_entropy(LOGITS, LABELS, MASK)
    np.testing.assert_allclose(got, masked(-own_log_p()), rtol=1e-6)
    np.testing.assert_allclose(train.softmax_cross_entropy(LOGITS, LABELS, MASK), got, rtol=1e-6)


def test_an_all_padding_batch_has_zero_loss_and_gradient():
    mask = np.zeros(4)
    for name in losses.LOSSES:
        fn = losses.reference_loss(name, focal_gamma=2.0)
        per_class = losses.class_terms([5, 1, 2], _method())
        value, grad = jax.value_and_grad(lambda z, fn=fn, pc=per_class: fn(z, LABELS, mask, pc))(
            jnp.asarray(LOGITS)
        )
        assert float(value) == 0.0 and not np.any(np.asarray(grad)), name


def test_padding_changes_nothing_whatever_its_logits():
    per_class = losses.class_terms([5, 1, 2], _method())
    other = LOGITS.copy()
    other[3] = [50.0, -50.0, 7.0]
    for name in losses.LOSSES:
        fn = losses.reference_loss(name, focal_gamma=1.5)
        assert float(fn(LOGITS, LABELS, MASK, per_class)) == pytest.approx(
            float(fn(other, LABELS, MASK, per_class)), rel=1e-6
        ), name


def test_weighted_cross_entropy_by_hand_and_by_optax():
    weights = np.array([0.5, 2.0, 1.0], np.float32)
    hand = masked(weights[LABELS] * -own_log_p())
    got = losses.weighted_cross_entropy(LOGITS, LABELS, MASK, weights)
    np.testing.assert_allclose(got, hand, rtol=1e-6)
    # optax: cross-entropy against the one-hot label scaled by the sample's class weight.
    targets = np.eye(3)[LABELS] * weights[LABELS][:, None]
    via_optax = masked(np.asarray(optax.softmax_cross_entropy(LOGITS, targets)))
    np.testing.assert_allclose(got, via_optax, rtol=1e-6)


def test_inverse_frequency_weights_by_hand():
    w = losses.class_weights([100, 10, 0, 40], "inverse_frequency")
    raw = np.array([1 / 100, 1 / 10, 0.0, 1 / 40])
    np.testing.assert_allclose(w, raw * 3 / raw.sum(), rtol=1e-6)  # 3 classes present
    assert w[2] == 0.0 and w.sum() == pytest.approx(3.0)


def test_effective_number_weights_by_hand():
    beta = 0.99
    counts = np.array([100, 10, 40])
    w = losses.class_weights(counts, "effective_number", beta)
    raw = (1 - beta) / (1 - beta**counts)  # Cui et al. 2019: 1 / E_n, E_n = (1-b^n)/(1-b)
    np.testing.assert_allclose(w, raw * 3 / raw.sum(), rtol=1e-6)
    # beta = 0 weighs classes alike; beta near 1 approaches inverse frequency
    np.testing.assert_allclose(losses.class_weights(counts, "effective_number", 0.0), 1.0)
    np.testing.assert_allclose(
        losses.class_weights(counts, "effective_number", 1 - 1e-7),
        losses.class_weights(counts, "inverse_frequency"),
        rtol=1e-3,
    )


def test_focal_loss_by_hand():
    gamma = 2.0
    p = np.exp(own_log_p())
    hand = masked(-((1 - p) ** gamma) * np.log(p))
    np.testing.assert_allclose(losses.focal(LOGITS, LABELS, MASK, gamma), hand, rtol=1e-5)
    # gamma = 0 is cross-entropy
    np.testing.assert_allclose(
        losses.focal(LOGITS, LABELS, MASK, 0.0),
        losses.cross_entropy(LOGITS, LABELS, MASK),
        rtol=1e-6,
    )


def test_focal_loss_down_weights_easy_samples():
    easy, hard = np.array([[6.0, 0.0, 0.0]]), np.array([[0.0, 0.5, 0.0]])
    label, mask = np.array([0]), np.ones(1)
    ratio_focal = losses.focal(easy, label, mask, 2.0) / losses.focal(hard, label, mask, 2.0)
    ratio_ce = losses.cross_entropy(easy, label, mask) / losses.cross_entropy(hard, label, mask)
    assert float(ratio_focal) < 0.01 * float(ratio_ce)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_focal_gradient_is_finite_when_the_network_is_certain(gamma):
    logits = jnp.array([[200.0, 0.0, -5.0], [0.0, 150.0, 1.0]])  # p_y == 1.0 in float32
    grad = jax.grad(lambda z: losses.focal(z, jnp.array([0, 1]), jnp.ones(2), gamma))(logits)
    assert np.all(np.isfinite(np.asarray(grad)))


def test_logit_adjusted_loss_by_hand():
    counts = np.array([60, 10, 30])
    tau = 1.5
    adjustment = tau * np.log(counts / counts.sum())
    hand = masked(-own_log_p(LOGITS + adjustment))
    per_class = losses.class_terms(counts, _method(logit_adjustment_tau=tau))
    np.testing.assert_allclose(per_class["adjustment"], adjustment, rtol=1e-6)
    got = losses.reference_loss("logit_adjusted")(LOGITS, LABELS, MASK, per_class)
    np.testing.assert_allclose(got, hand, rtol=1e-5)
    # tau = 0 is cross-entropy
    per_class_0 = losses.class_terms(counts, _method(logit_adjustment_tau=0.0))
    np.testing.assert_allclose(
        losses.reference_loss("logit_adjusted")(LOGITS, LABELS, MASK, per_class_0),
        losses.cross_entropy(LOGITS, LABELS, MASK),
        rtol=1e-6,
    )


def test_logit_adjustment_raises_the_loss_of_rare_classes():
    """A sample of a rare class costs more than plain CE; one of a common class, less."""
    counts = np.array([90, 10])
    per_class = losses.class_terms(counts, _method())
    z, mask = np.zeros((1, 2)), np.ones(1)
    for label, more in ((1, True), (0, False)):
        y = np.array([label])
        adjusted = float(losses.logit_adjusted(z, y, mask, per_class["adjustment"]))
        plain = float(losses.cross_entropy(z, y, mask))
        assert (adjusted > plain) == more


def test_make_refuses_an_unknown_loss():
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        losses.reference_loss("hinge")


def _method(**overrides):
    from rsrl_jax.config import base_config

    method = base_config().method
    for key, value in overrides.items():
        method[key] = value
    return method


# The general loss (one program for every lane) against each specific loss: values and
# gradients, padding included.
GENERAL_CASES = {
    "cross_entropy": lambda z, y, m, t: losses.cross_entropy(z, y, m),
    "weighted_cross_entropy": lambda z, y, m, t: losses.weighted_cross_entropy(z, y, m, t[0]),
    "focal": lambda z, y, m, t: losses.focal(z, y, m, 1.5),
    "logit_adjusted": lambda z, y, m, t: losses.logit_adjusted(z, y, m, t[1]),
    "emd": lambda z, y, m, t: losses.emd(z, y, m),
}


@pytest.mark.parametrize("loss", losses.LOSSES)
def test_the_general_loss_is_each_loss_of_its_terms(loss):
    method = _method(loss=loss, focal_gamma=1.5, class_weights="inverse_frequency")
    counts = [5, 1, 2]
    terms = losses.loss_terms(counts, method)
    raw = losses.class_terms(counts, method)
    reference = GENERAL_CASES[loss]
    z = jnp.asarray(LOGITS, jnp.float32)
    got, got_grad = jax.value_and_grad(lambda z: losses.general(z, LABELS, MASK, terms))(z)
    want, want_grad = jax.value_and_grad(
        lambda z: reference(z, LABELS, MASK, (raw["weight"], raw["adjustment"]))
    )(z)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-5, atol=1e-7)
    assert not np.any(np.asarray(got_grad)[3])  # padding: no gradient


def test_the_general_loss_without_focus_stays_finite_when_certain():
    terms = losses.loss_terms([5, 1], _method())
    assert float(terms["gamma"]) == 0.0
    logits = jnp.array([[200.0, -200.0], [0.0, 150.0]])
    value, grad = jax.value_and_grad(
        lambda z: losses.general(z, jnp.array([0, 1]), jnp.ones(2), terms)
    )(logits)
    assert float(value) == 0.0 and np.all(np.isfinite(np.asarray(grad)))


def test_loss_terms_refuse_an_unknown_loss():
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        losses.loss_terms([1, 2], _method(loss="hinge"))


# NIMA's EMD (Talebi and Milanfar 2018, eq. 1, r = 2).


def nima_emd(logits, targets):
    """NIMA's formula in numpy, float64: per sample (1/N sum_k |CDF_p(k) - CDF_t(k)|^2)^(1/2)."""
    z = np.asarray(logits, np.float64)
    p = np.exp(np_log_softmax(z))
    cdf = np.cumsum(p, axis=-1) - np.cumsum(np.asarray(targets, np.float64), axis=-1)
    return np.sqrt(np.mean(np.abs(cdf) ** 2, axis=-1))


def test_emd_by_hand():
    # Three classes, p = softmax(0, 0, ln 2) = (1/4, 1/4, 1/2), label 2: CDFs (1/4, 1/2, 1)
    # and (0, 0, 1); EMD = sqrt((1/16 + 1/4 + 0) / 3) = sqrt(5/48).
    logits = jnp.array([[0.0, 0.0, np.log(2.0)]])
    got = losses.emd(logits, jnp.array([2]), jnp.ones(1))
    np.testing.assert_allclose(float(got), np.sqrt(5 / 48), rtol=1e-6)


def test_emd_is_nimas_formula_over_the_unmasked_samples():
    got = losses.emd(jnp.asarray(LOGITS, jnp.float32), LABELS, MASK)
    want = masked(nima_emd(LOGITS, np.eye(3)[LABELS]))
    np.testing.assert_allclose(float(got), want, rtol=1e-6)


def test_emd_of_a_label_distribution_is_nimas_formula():
    targets = np.array([[0.2, 0.5, 0.3], [0.0, 0.1, 0.9], [1 / 3, 1 / 3, 1 / 3], [1.0, 0, 0]])
    got = losses.emd_per_sample(jnp.asarray(LOGITS, jnp.float32), jnp.asarray(targets))
    np.testing.assert_allclose(np.asarray(got), nima_emd(LOGITS, targets), rtol=1e-5)


def test_emd_costs_more_the_further_the_prediction_is_from_the_score():
    near, far = jnp.array([[0.0, 9.0, 0.0, 0.0]]), jnp.array([[0.0, 0.0, 0.0, 9.0]])
    label, mask = jnp.array([0]), jnp.ones(1)
    assert float(losses.emd(near, label, mask)) < float(losses.emd(far, label, mask))
    # Cross-entropy sees both alike: the mass on the true class is the same.
    np.testing.assert_allclose(
        float(losses.cross_entropy(near, label, mask)),
        float(losses.cross_entropy(far, label, mask)),
    )


@pytest.mark.parametrize("loss", ["emd", "cross_entropy"])
def test_the_general_loss_gradient_is_finite_when_emd_is_zero(loss):
    # Certain and right: softmax rounds to the one-hot, each CDF difference is exactly 0,
    # where sqrt's derivative is infinite; a CE lane computes the EMD side too.
    terms = losses.loss_terms([5, 1, 2], _method(loss=loss))
    logits = jnp.array([[200.0, -200.0, 0.0], [0.0, -150.0, 150.0], [1.0, 2.0, 3.0]])
    grad = jax.grad(lambda z: losses.general(z, jnp.array([0, 2, 1]), jnp.ones(3), terms))(logits)
    assert np.all(np.isfinite(np.asarray(grad)))
    assert np.any(np.asarray(grad)[2])
    assert not np.any(np.asarray(grad)[:2])  # the certain, right samples: no gradient
