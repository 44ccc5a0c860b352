"""The protocol around the data: official test lists, per-round summary over folds, sharding."""

import ml_collections
import numpy as np
import pytest

from rsrl_jax.data import sharding, splits
from rsrl_jax.metrics import fold_stats


def protocol(folds=3, val_fraction=0.2):
    return ml_collections.ConfigDict(
        {"folds": folds, "val_fraction": val_fraction, "test_fraction": 0.2}
    )


def test_protocol_splits_is_k_fold_without_an_official_list():
    labels = np.random.default_rng(0).integers(0, 4, 90)
    got = splits.protocol_splits(labels, protocol(), seed=5)
    want = splits.fold_splits(labels, 3, 0.2, 0.2, seed=5)
    for a, b in zip(got, want, strict=True):
        for part in ("train", "val", "test"):
            np.testing.assert_array_equal(getattr(a, part), getattr(b, part))


def test_protocol_splits_honours_an_official_test_list():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 200)
    official = rng.random(200) < 0.3
    (split,) = splits.protocol_splits(labels, protocol(folds=5), seed=0, official_test=official)
    np.testing.assert_array_equal(split.test, np.flatnonzero(official))
    rest = np.concatenate([split.train, split.val])
    np.testing.assert_array_equal(np.sort(rest), np.flatnonzero(~official))
    for c in range(3):  # validation is stratified inside the non-test part
        n_c = np.sum(labels[~official] == c)
        assert abs(np.sum(labels[split.val] == c) - 0.2 * n_c) <= 1


def report(macro_f1, accuracy, per_class):
    return {
        "macro_f1": macro_f1,
        "balanced_accuracy": accuracy / 2,
        "accuracy": accuracy,
        "per_class": {
            score: {"precision": p, "recall": r, "f1": f, "support": 1, "present": present}
            for score, (p, r, f, present) in per_class.items()
        },
    }


def test_rounds_over_folds_mean_and_std():
    records = []
    for fold, (f1, acc, p3, present3) in enumerate([(0.2, 0.5, 0.4, True), (0.6, 0.7, 0.0, False)]):
        for round_ in (1, 2):
            records.append(
                {
                    "fold": fold,
                    "round": round_,
                    "train_size": 10 * round_ + fold,
                    "val": report(f1 * round_, acc, {"3": (p3, 1.0, 0.5, present3)}),
                    "test": report(f1 + round_, acc / round_, {"3": (p3, 0.0, 0.0, present3)}),
                }
            )
    summary = fold_stats.rounds_over_folds(records)
    assert [s["round"] for s in summary] == [1, 2] and summary[0]["folds"] == [0, 1]
    r2 = summary[1]
    assert r2["val"]["macro_f1"] == pytest.approx({"mean": 0.8, "std": 0.4, "n": 2})
    assert r2["test"]["macro_f1"] == pytest.approx({"mean": 2.4, "std": 0.2, "n": 2})
    assert r2["test"]["accuracy"] == pytest.approx({"mean": 0.3, "std": 0.05, "n": 2})
    assert r2["test"]["balanced_accuracy"] == pytest.approx({"mean": 0.15, "std": 0.025, "n": 2})
    assert r2["train_size"] == pytest.approx({"mean": 20.5, "std": 0.5, "n": 2})
    # Class 3 is absent in fold 1: its per-class figures average over fold 0 only.
    assert r2["val"]["per_class"]["3"]["precision"] == {"mean": 0.4, "std": 0.0, "n": 1}


def test_process_slice_partitions_a_global_batch():
    batch = np.arange(12) * 7
    parts = [sharding.process_slice(batch, i, 3) for i in range(3)]
    np.testing.assert_array_equal(np.concatenate(parts), batch)  # disjoint, complete, in order
    assert all(len(p) == 4 for p in parts)
    np.testing.assert_array_equal(sharding.process_slice(batch), batch)  # one process here
    with pytest.raises(ValueError, match="does not split evenly over 5 processes"):
        sharding.process_slice(batch, 0, 5)
    with pytest.raises(ValueError, match="process_index=3"):
        sharding.process_slice(batch, 3, 3)
