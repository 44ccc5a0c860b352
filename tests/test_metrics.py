import numpy as np
import pytest
from sklearn import metrics as skm

from rsrl_jax.metrics.classification import classification_report


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_on_random_labels_with_absent_classes(seed):
    rng = np.random.default_rng(seed)
    num_classes = 8
    # Classes 6 and 7 never occur in y_true; class 7 never predicted either.
    y_true = rng.choice(6, size=200, p=[0.05, 0.3, 0.4, 0.15, 0.05, 0.05])
    y_pred = np.where(rng.uniform(size=200) < 0.6, y_true, rng.integers(0, 7, 200))
    report = classification_report(y_true, y_pred, num_classes, class_names=range(2, 10))
    p, r, f, s = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=range(num_classes), zero_division=0
    )
    for i, score in enumerate(range(2, 10)):
        c = report["per_class"][str(score)]
        assert c["precision"] == pytest.approx(p[i])
        assert c["recall"] == pytest.approx(r[i])
        assert c["f1"] == pytest.approx(f[i])
        assert c["support"] == s[i]
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert report["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    present = sorted(set(y_true) | set(y_pred))
    assert 7 not in present and not report["per_class"]["9"]["present"]
    assert report["macro_f1"] == pytest.approx(
        skm.f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    )
    all_classes = classification_report(y_true, y_pred, num_classes, macro_over_present=False)
    assert all_classes["macro_f1"] == pytest.approx(
        skm.f1_score(y_true, y_pred, labels=range(8), average="macro", zero_division=0)
    )
    np.testing.assert_array_equal(
        report["confusion_matrix"], skm.confusion_matrix(y_true, y_pred, labels=range(8))
    )


def test_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match="y_pred"):
        classification_report([0, 1], [0, 5], 3)
