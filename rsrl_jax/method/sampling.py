"""Which samples each epoch of a round draws, and the selections RSRL is compared with.

A round trains on a subset of D (all of D, or what a selection kept). Each epoch draws its
sample order from the round's generator, seeded by (seed, fold, round) and advanced epoch by
epoch, so a resumed round replays the same batches. `train.epoch_samples` sets the epoch's
length: one pass over the round's training set (`kept`, the paper's: a smaller round trains
fewer steps) or as many samples as the whole of D (`all`: every round of every method then
spends the same number of optimizer steps, the budget `rsrl_jax.compare` equalises).
"""

import jax
import numpy as np

SAMPLINGS = ("uniform", "class_balanced")
SELECTIONS = ("rsrl", "none", "hardness")
EPOCH_SAMPLES = ("kept", "all")


def samples_per_epoch(epoch_samples: str, num_kept: int, num_d: int) -> int:
    """How many samples (padded up to whole batches) one epoch of a round trains on."""
    if epoch_samples == "kept":
        return num_kept
    if epoch_samples == "all":
        return num_d
    raise ValueError(f"unknown train.epoch_samples {epoch_samples!r}: one of {EPOCH_SAMPLES}")


def epoch_order(
    rng: np.random.Generator, kept: np.ndarray, kept_labels: np.ndarray, size: int, sampling: str
) -> np.ndarray:
    """`size` indices from `kept`, the order one epoch trains on.

    `uniform`: whole shuffles of `kept`, back to back, cut at `size` (with size = len(kept),
    one shuffle: every sample once, as a plain epoch). `class_balanced`: `size` draws with
    replacement, each class of the round's training set equally likely and each sample
    equally likely within its class.
    """
    if len(kept) == 0:
        raise ValueError("cannot draw an epoch from an empty training set")
    if sampling == "uniform":
        shuffles = -(-size // len(kept))
        return np.concatenate([rng.permutation(kept) for _ in range(shuffles)])[:size]
    if sampling == "class_balanced":
        _, inverse, counts = np.unique(kept_labels, return_inverse=True, return_counts=True)
        p = 1.0 / (len(counts) * counts[inverse])
        return rng.choice(kept, size=size, replace=True, p=p / p.sum())
    raise ValueError(f"unknown method.sampling {sampling!r}: must be one of {SAMPLINGS}")


def hardness_keep(own_probability, labels, num_classes: int, target: int = 0) -> np.ndarray:
    """imbalanced-learn's InstanceHardnessThreshold rule, on given probabilities.

    With its default sampling strategy ('auto' = every class but the minority one), each
    class c other than the smallest of `labels` (on ties the lowest index; imbalanced-learn
    takes the first it meets) is reduced towards n samples, n = `target` or, when 0, the size
    of the smallest class: it keeps its samples whose probability of their own class reaches
    the (1 - n / n_c) percentile of the class's (numpy's linear interpolation; ties at the
    threshold are kept, so a class may keep a few more than n). Classes of at most n samples
    are kept whole. imbalanced-learn takes the probabilities from a cross-validated
    classifier; here they are the network's.
    """
    p = np.asarray(own_probability, np.float64)
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=num_classes)
    present = np.flatnonzero(counts)
    keep = np.ones(len(labels), bool)
    if len(present) == 0:
        return keep
    minority = present[np.argmin(counts[present])]
    n = target if target > 0 else int(counts[minority])
    for c in present:
        if c == minority or counts[c] <= n:
            continue
        members = labels == c
        threshold = np.percentile(p[members], (1.0 - n / counts[c]) * 100.0)
        keep[members] = p[members] >= threshold
    return keep


def baseline_keep(selection: str, d_logits, d_labels, num_classes: int, target: int = 0):
    """The next round's training set for the selections other than RSRL's.

    `none`: all of D every round (plain fine-tuning, round after round, on the same budget).
    `hardness`: `hardness_keep` on the softmax probability (imbalanced-learn's
    `predict_proba`) that the previous round's network gives each sample's own class.
    """
    d_labels = np.asarray(d_labels)
    if selection == "none":
        return np.ones(len(d_labels), bool)
    if selection == "hardness":
        prob = np.asarray(jax.nn.softmax(np.asarray(d_logits, np.float32), axis=-1))
        own = prob[np.arange(len(d_labels)), d_labels]
        return hardness_keep(own, d_labels, num_classes, target)
    raise ValueError(f"no baseline selection {selection!r}: one of {SELECTIONS[1:]}")
