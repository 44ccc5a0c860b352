import numpy as np
import pytest

from rsrl_jax.data.splits import fold_splits


def _labels():
    rng = np.random.default_rng(1)
    return rng.choice(8, size=620, p=[0.03, 0.3, 0.38, 0.19, 0.06, 0.036, 0.0035, 0.0005])


@pytest.mark.parametrize("folds", [2, 5])
def test_kfold_partitions_and_stratifies(folds):
    labels = _labels()
    splits = fold_splits(labels, folds, val_fraction=0.1, test_fraction=0.2, seed=3)
    assert len(splits) == folds
    tests = np.concatenate([s.test for s in splits])
    np.testing.assert_array_equal(np.sort(tests), np.arange(len(labels)))  # test exactly once
    for s in splits:
        parts = [s.train, s.val, s.test]
        assert sum(len(p) for p in parts) == len(labels)
        assert len(np.unique(np.concatenate(parts))) == len(labels)  # disjoint, complete
    for c in range(8):
        per_fold = [np.sum(labels[s.test] == c) for s in splits]
        assert max(per_fold) - min(per_fold) <= 1, (c, per_fold)
        n_c = np.sum(labels == c)
        for s in splits:  # validation share within one sample of the target, per class
            rest = n_c - np.sum(labels[s.test] == c)
            assert abs(np.sum(labels[s.val] == c) - 0.1 * rest) <= 1


def test_single_split_and_seed():
    labels = _labels()
    (a,) = fold_splits(labels, 1, 0.1, 0.2, seed=0)
    (b,) = fold_splits(labels, 1, 0.1, 0.2, seed=0)
    (c,) = fold_splits(labels, 1, 0.1, 0.2, seed=1)
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)
    for k in range(8):
        assert abs(np.sum(labels[a.test] == k) - 0.2 * np.sum(labels == k)) <= 1


@pytest.mark.parametrize("folds", [41, 40])
def test_more_folds_than_the_photos_fill_is_refused_naming_the_most_that_work(folds):
    import ml_collections

    from rsrl_jax import errors
    from rsrl_jax.data.splits import protocol_splits

    labels = np.array([3] * 3 + [4] * 7 + [5] * 18 + [6] * 9 + [7] * 3)  # 40 photos
    protocol = ml_collections.ConfigDict(dict(folds=folds, val_fraction=0.1, test_fraction=0.2))
    with pytest.raises(
        errors.ConfigError, match=rf"protocol.folds={folds}: fold \d+ would test"
    ) as e:
        protocol_splits(labels, protocol, seed=0)
    most = int(str(e.value).rsplit("protocol.folds=", 1)[1])
    protocol.folds = most  # the count it names works: every fold trains and tests
    assert all(len(s.train) and len(s.test) for s in protocol_splits(labels, protocol, seed=0))
    protocol.folds = most + 1  # and it is the most that does
    with pytest.raises(errors.ConfigError):
        protocol_splits(labels, protocol, seed=0)


def test_a_test_fraction_that_leaves_no_test_photo_is_refused():
    import ml_collections

    from rsrl_jax import errors
    from rsrl_jax.data.splits import protocol_splits

    protocol = ml_collections.ConfigDict(dict(folds=1, val_fraction=0.1, test_fraction=0.001))
    with pytest.raises(errors.ConfigError, match="protocol.test_fraction=0.001"):
        protocol_splits(np.array([0, 1] * 10), protocol, seed=0)
