"""Confident learning as the next round's selection (`method.selection='confident_learning'`):
the comparator for RSRL's premise that a majority sample its network finds unlikely is a
mislabelled one.

Confident learning (Northcutt, Jiang and Chuang, "Confident learning: estimating uncertainty
in dataset labels", JAIR 70, 2021) counts a sample as a label issue from OUT-OF-SAMPLE
probabilities with per-class thresholds (each class's mean self-confidence). The decision is
the `cleanlab` library's (`cleanlab.filter.find_label_issues`), called as it is; this module
adds the two choices RSRL's setting needs: which samples of D score which copy (`parts`:
each copy of the previous network is fine-tuned on k-1 parts and scores the one it did not
see, `engine.cross_fit`), and that, as RSRL, only the majority classes lose samples.

Pure numpy: probabilities in, a keep mask over D out.
"""

import re
import warnings

import numpy as np

# `method.confident_learning.filter_by`: cleanlab's ways of turning its confident joint into
# issues (cleanlab.filter.find_label_issues' `filter_by`), 'prune_by_noise_rate' its default.
FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning")
# The spawn key of the parts' generator: a stream apart from the epoch orders (`sampling`) and
# random_drop's draws (`keep_rules.RANDOM_DROP_STREAM`).
PARTS_STREAM = 2
# cleanlab.filter's warning for a class it cannot prune fully (too few samples), naming the
# class by its INDEX: said again here by the score it stands for.
_FEW = re.compile(r"May not flag all label issues in class: (\d+)")


def parts(labels, k: int, seed: int, fold: int) -> np.ndarray:
    """int64 [N]: the cross-fitting part (0..k-1) of each sample of D, stratified: within each
    class a random permutation dealt round-robin, so each part holds n_c / k of class c, give
    or take one. A function of (labels, k, seed, fold) only: the same parts every round (the
    copies of round i and i+1 hold out the same samples), in every process."""
    labels = np.asarray(labels)
    sequence = np.random.SeedSequence([seed, fold], spawn_key=(PARTS_STREAM,))
    rng = np.random.default_rng(sequence)
    out = np.empty(len(labels), np.int64)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        out[members] = np.arange(len(members)) % k
    return out


def label_issues(pred_probs, labels, filter_by: str = "prune_by_noise_rate"):
    """(bool [N], sorted class indices): cleanlab's label issues of `labels` [N] (class
    indices) under `pred_probs` [N, C] (rows sum to 1, out-of-sample),
    `cleanlab.filter.find_label_issues` with its per-class thresholds and `filter_by`
    (`FILTERS`), on one thread (deterministic, no worker processes); and the classes cleanlab
    warned it may not flag fully (too few samples: its UserWarning, caught here so that the
    caller can say it once, by score). Other warnings pass on. cleanlab is imported here:
    only this selection needs it."""
    from cleanlab.filter import find_label_issues

    with warnings.catch_warnings(record=True, action="always") as caught:  # scoped to here
        issues = find_label_issues(
            np.asarray(labels), np.asarray(pred_probs), filter_by=filter_by, n_jobs=1
        )
    few = set()
    for w in caught:
        match = _FEW.search(str(w.message))
        if match:
            few.add(int(match[1]))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return np.asarray(issues, bool), sorted(few)


def confident_learning_keep(
    pred_probs, labels, majority, filter_by: str, class_scores=None
) -> tuple[np.ndarray, str | None]:
    """(bool [N], warning or None): D's samples kept by confident learning: every sample but
    the label issues (`label_issues`) of the `majority` classes [M]. The other classes are
    kept whole, as RSRL keeps them (its rule thins only the `rsrl.num_majority` largest
    classes). The warning names, by `class_scores` (score of each class index; the index
    itself without them), the majority classes cleanlab may not have flagged fully; a
    minority class's is moot (nothing of it is dropped)."""
    labels = np.asarray(labels)
    issues, few = label_issues(pred_probs, labels, filter_by)
    few = [c for c in few if c in set(np.asarray(majority).tolist())]
    warning = None
    if few:
        named = [str(class_scores[c]) if class_scores is not None else str(c) for c in few]
        counts = ", ".join(
            f"{s}: {int((labels == c).sum())}" for s, c in zip(named, few, strict=True)
        )
        warning = (
            f"confident learning may not flag all label issues of score"
            f"{'s' if len(few) > 1 else ''} {', '.join(named)}: too few photos in D for "
            f"cleanlab (photos per score: {counts})"
        )
    return ~(issues & np.isin(labels, np.asarray(majority))), warning
