"""Which samples each epoch of a round draws from the round's training set.

A round trains on a subset of D (all of D, or what a selection kept: `method.selection`).
Each epoch draws its sample order from the round's generator, seeded by (seed, fold, round)
and advanced epoch by epoch, so a resumed round replays the same batches.
`train.epoch_samples` sets the epoch's length: one pass over the round's training set
(`kept`, the paper's: a smaller round trains fewer steps) or as many samples as the whole of
D (`all`: every round of every method then spends the same number of optimizer steps, the
budget `rsrl_jax.compare` equalises).
"""

import numpy as np

SAMPLINGS = ("uniform", "class_balanced")
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
