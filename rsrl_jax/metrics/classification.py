"""Per-class precision, recall, F-measure (paper eq. 6) and accuracy (eq. 7).

Computed from the confusion matrix; matches scikit-learn's `precision_recall_fscore_support`
with `zero_division=0`.
"""

import numpy as np


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """[C, C] counts, rows = true class, columns = predicted class."""
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} has labels outside [0, {num_classes})")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def classification_report(
    y_true, y_pred, num_classes: int, class_names=None, macro_over_present: bool = True
) -> dict:
    """Accuracy, macro F and per-class precision/recall/F1/support.

    Args:
      y_true, y_pred: integer class indices in [0, num_classes).
      num_classes: C.
      class_names: keys of `per_class` (e.g. the aesthetic scores); default the indices.
      macro_over_present: average the macro figures only over classes that occur in y_true
        or y_pred. A class absent from both has nothing to measure: it is listed with
        `present: False` and zeros, not averaged in as a fake 0. With False the average is
        over all classes (sklearn's `average='macro'` with `labels=range(C)`).

    Returns:
      {accuracy, macro_precision, macro_recall, macro_f1, balanced_accuracy, num_examples,
       per_class: {name: {precision, recall, f1, support, present}}, confusion_matrix}
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted.astype(np.float64))
    recall = _safe_div(tp, support.astype(np.float64))
    f1 = _safe_div(2 * precision * recall, precision + recall)
    present = (support + predicted) > 0
    avg = present if macro_over_present else np.ones(num_classes, bool)
    n = int(cm.sum())
    names = [str(c) for c in (class_names if class_names is not None else range(num_classes))]

    def mean(values, where):
        return float(values[where].mean()) if where.any() else 0.0

    return {
        "num_examples": n,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_precision": mean(precision, avg),
        "macro_recall": mean(recall, avg),
        "macro_f1": mean(f1, avg),
        # Mean recall over the classes that have true samples (sklearn's balanced_accuracy).
        "balanced_accuracy": mean(recall, support > 0),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
                "present": bool(present[i]),
            }
            for i, name in enumerate(names)
        },
        "confusion_matrix": cm.tolist(),
    }
