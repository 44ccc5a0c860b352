"""Epoch sampling (uniform, class-balanced) and the instance-hardness selection rule."""

import numpy as np
import pytest
from imblearn.under_sampling import InstanceHardnessThreshold
from sklearn.base import BaseEstimator, ClassifierMixin

from rsrl_jax.data import sharding
from rsrl_jax.method import keep_rules, sampling


def test_a_uniform_epoch_of_the_kept_size_is_the_plain_shuffle():
    """Unchanged from before the baselines: the same draw, so old runs replay identically."""
    kept = np.arange(100, 137)
    got = sampling.epoch_order(np.random.default_rng([0, 1, 2]), kept, kept % 3, 37, "uniform")
    np.testing.assert_array_equal(got, np.random.default_rng([0, 1, 2]).permutation(kept))


def test_a_longer_uniform_epoch_chains_whole_shuffles():
    kept = np.arange(10)
    order = sampling.epoch_order(np.random.default_rng(0), kept, kept, 25, "uniform")
    assert len(order) == 25
    for start in (0, 10):
        assert sorted(order[start : start + 10]) == list(kept)  # each shuffle has every sample
    assert len(set(order[20:])) == 5


def test_class_balanced_epochs_draw_every_class_equally_often():
    labels = np.repeat([0, 1, 2], [50, 5, 20])
    kept = np.arange(1000, 1075)
    rng = np.random.default_rng(7)
    draws = np.concatenate(
        [sampling.epoch_order(rng, kept, labels, len(kept), "class_balanced") for _ in range(200)]
    )
    assert len(draws) == 200 * 75
    share = np.bincount(labels[draws - 1000], minlength=3) / len(draws)
    np.testing.assert_allclose(share, [1 / 3] * 3, atol=0.02)  # ~5 standard errors
    # within a class every sample is equally likely: the 5 samples of class 1, 1000 draws each
    per_sample = np.bincount(draws - 1000, minlength=75)[labels == 1]
    np.testing.assert_allclose(per_sample / per_sample.sum(), 0.2, atol=0.03)
    assert set(draws) <= set(kept)


def test_class_balanced_epochs_keep_the_plain_step_count_and_are_deterministic():
    labels = np.repeat([0, 1], [90, 10])
    kept = np.arange(100)
    a = sampling.epoch_order(np.random.default_rng(3), kept, labels, 100, "class_balanced")
    b = sampling.epoch_order(np.random.default_rng(3), kept, labels, 100, "class_balanced")
    np.testing.assert_array_equal(a, b)
    assert len(list(sharding.padded_batches(a, 32))) == len(list(sharding.padded_batches(kept, 32)))


def test_samples_per_epoch():
    assert sampling.samples_per_epoch("kept", 40, 100) == 40
    assert sampling.samples_per_epoch("all", 40, 100) == 100
    with pytest.raises(ValueError, match="epoch_samples 'half'"):
        sampling.samples_per_epoch("half", 40, 100)


def test_epoch_order_refuses_an_unknown_sampling_and_an_empty_set():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="method.sampling 'smote'"):
        sampling.epoch_order(rng, np.arange(3), np.zeros(3, int), 3, "smote")
    with pytest.raises(ValueError, match="empty training set"):
        sampling.epoch_order(rng, np.arange(0), np.zeros(0, int), 3, "uniform")


# Class 1 (2 samples) is the minority: the others are reduced towards 2 samples.
HAND_LABELS = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
HAND_PROB = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.01, 0.02, 0.6, 0.2, 0.9, 0.4])


def test_hardness_rule_on_a_hand_made_case():
    keep = keep_rules.hardness_keep(HAND_PROB, HAND_LABELS, 3)
    # class 0: the 66.7th percentile of (.1 .3 .5 .7 .8 .9) is .7333: keeps .8 and .9;
    # class 2: the 50th percentile of (.2 .4 .6 .9) is .5: keeps .6 and .9; class 1 whole.
    expected = [1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0]
    np.testing.assert_array_equal(keep, np.array(expected, bool))


def test_hardness_rule_with_a_target_size_and_ties():
    keep = keep_rules.hardness_keep(HAND_PROB, HAND_LABELS, 3, target=3)
    # class 0: 50th percentile .6 keeps .7 .8 .9; class 2: 25th percentile .35 keeps .4 .6 .9
    np.testing.assert_array_equal(keep, np.array([1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 1, 1], bool))
    # samples tied at the threshold are all kept
    tied = keep_rules.hardness_keep(np.array([0.5] * 4 + [0.1]), np.array([0] * 4 + [1]), 2)
    assert tied.all()


class _GivenProbabilities(ClassifierMixin, BaseEstimator):
    """A 'classifier' whose predict_proba looks the probabilities up by sample index."""

    def __init__(self, table=None):
        self.table = table

    def fit(self, x, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, x):
        return self.table[x[:, 0].astype(int)]


def test_hardness_rule_matches_imbalanced_learn():
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat([0, 1, 2, 3], [12, 3, 30, 7]))
    table = rng.dirichlet(np.ones(4), size=len(labels))
    x = np.arange(len(labels))[:, None].astype(float)
    iht = InstanceHardnessThreshold(estimator=_GivenProbabilities(table), cv=2, random_state=0)
    iht.fit_resample(x, labels)
    own = table[np.arange(len(labels)), labels]
    keep = keep_rules.hardness_keep(own, labels, 4)
    np.testing.assert_array_equal(np.flatnonzero(keep), np.sort(iht.sample_indices_))
    assert np.bincount(labels[keep], minlength=4).tolist() == [3, 3, 3, 3]


def test_baseline_keep():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]))
    labels = np.array([0, 0, 0, 1])
    assert keep_rules.baseline_keep("none", logits, labels, 3).all()
    # softmax of log-probabilities gives back the probabilities: own .7 .2 .6, minority class 1
    keep = keep_rules.baseline_keep("hardness", logits, labels, 3)
    np.testing.assert_array_equal(keep, [True, False, False, True])
    with pytest.raises(ValueError, match="no baseline selection 'rsrl'"):
        keep_rules.baseline_keep("rsrl", logits, labels, 3)
