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

import numpy as np

# `method.confident_learning.filter_by`: cleanlab's ways of turning its confident joint into
# issues (cleanlab.filter.find_label_issues' `filter_by`), 'prune_by_noise_rate' its default.
FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning")
# The spawn key of the parts' generator: a stream apart from the epoch orders (`sampling`) and
# random_drop's draws (`selection.RANDOM_DROP_STREAM`).
PARTS_STREAM = 2


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


def label_issues(pred_probs, labels, filter_by: str = "prune_by_noise_rate") -> np.ndarray:
    """bool [N]: cleanlab's label issues of `labels` [N] (class indices) under `pred_probs`
    [N, C] (rows sum to 1, out-of-sample), `cleanlab.filter.find_label_issues` with its
    per-class thresholds and `filter_by` (`FILTERS`), on one thread (deterministic, no worker
    processes). cleanlab is imported here: only this selection needs it."""
    from cleanlab.filter import find_label_issues

    issues = find_label_issues(
        np.asarray(labels), np.asarray(pred_probs), filter_by=filter_by, n_jobs=1
    )
    return np.asarray(issues, bool)


def confident_learning_keep(pred_probs, labels, majority, filter_by: str) -> np.ndarray:
    """bool [N]: D's samples kept by confident learning: every sample but the label issues
    (`label_issues`) of the `majority` classes [M]. The other classes are kept whole, as RSRL
    keeps them (its rule thins only the `rsrl.num_majority` largest classes)."""
    labels = np.asarray(labels)
    issues = label_issues(pred_probs, labels, filter_by)
    return ~(issues & np.isin(labels, np.asarray(majority)))
