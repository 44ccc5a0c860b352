import jax
import numpy as np

from rsrl_jax.method.selection import keep_mask, majority_classes


def test_majority_ranked_by_count_ties_to_lower_index():
    labels = np.array([2] * 5 + [0] * 3 + [1] * 3 + [3] * 7 + [4])
    np.testing.assert_array_equal(majority_classes(labels, 5, 3), [3, 2, 0])


def test_minority_always_kept_whatever_the_likelihood():
    lik = np.zeros((3, 4), np.float32)  # nobody is confident about anything
    labels = np.array([1, 2, 3])
    keep = keep_mask(lik, labels, np.array([0]), np.array([0.99]))
    assert np.asarray(keep).tolist() == [True, True, True]


def test_thresholds_apply_by_rank():
    # majority ranks: class 2 is s_max1 (K1=0.9), class 0 is s_max2 (K2=0.5).
    majority, thresholds = np.array([2, 0]), np.array([0.9, 0.5])
    lik = np.array(
        [
            [0.0, 0.0, 0.8, 0.0],  # class 2, 0.8 < K1 -> drop
            [0.6, 0.0, 0.0, 0.0],  # class 0, 0.6 >= K2 -> keep
            [0.0, 0.0, 0.95, 0.0],  # class 2, 0.95 >= K1 -> keep
            [0.4, 0.0, 0.0, 0.0],  # class 0, 0.4 < K2 -> drop
            [0.0, 0.0, 0.9, 0.0],  # class 2, exactly K1 -> keep (>=)
            [0.99, 0.99, 0.99, 0.0],  # class 3, minority -> keep
        ],
        np.float32,
    )
    labels = np.array([2, 0, 2, 0, 2, 3])
    keep = keep_mask(lik, labels, majority, thresholds)
    assert np.asarray(keep).tolist() == [False, True, True, False, True, True]


def test_only_own_class_likelihood_counts():
    # High likelihood for another class does not save a majority sample.
    lik = np.array([[0.1, 0.999], [0.999, 0.1]], np.float32)
    keep = keep_mask(lik, np.array([0, 0]), np.array([0]), np.array([0.99]))
    assert np.asarray(keep).tolist() == [False, True]


def test_dropped_sample_comes_back_next_round():
    labels = np.array([0, 0, 1])
    majority, k = np.array([0]), np.array([0.99])
    round2 = keep_mask(np.array([[0.5, 0.1], [0.995, 0], [0, 0]]), labels, majority, k)
    round3 = keep_mask(np.array([[0.999, 0.1], [0.2, 0], [0, 0]]), labels, majority, k)
    assert np.asarray(round2).tolist() == [False, True, True]
    assert np.asarray(round3).tolist() == [True, False, True]  # sample 0 is back


def test_jittable_and_matches_eager():
    rng = np.random.default_rng(0)
    lik = rng.uniform(size=(50, 8)).astype(np.float32)
    labels = rng.integers(0, 8, 50)
    majority, k = np.array([4, 3, 5]), np.array([0.7, 0.5, 0.3], np.float32)
    eager = np.asarray(keep_mask(lik, labels, majority, k))
    jitted = np.asarray(jax.jit(keep_mask)(lik, labels, majority, k))
    np.testing.assert_array_equal(eager, jitted)
    own = lik[np.arange(50), labels]
    expected = np.ones(50, bool)
    for c, kk in zip(majority, k, strict=True):
        expected[labels == c] = own[labels == c] >= kk
    np.testing.assert_array_equal(eager, expected)
