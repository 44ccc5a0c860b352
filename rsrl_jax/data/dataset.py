"""The Dataset: one data set in memory (photos or feature vectors, their classes), and
`from_scores`, which makes one from scores. Below every loader (`data.datasets.load`, the
embeddings files, the synthetic vectors), which all return one.
"""

import dataclasses

import numpy as np

from rsrl_jax.data import duplicates as duplicates_lib
from rsrl_jax.errors import DataError


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Decoded photos (or feature vectors) and their classes.

    `labels` are class indices; `class_scores[labels]` gives the aesthetic score. The class
    list is the scores present in the data, sorted.
    """

    # What the network is fed (`data.inputs`): uint8 photos [N, S, S, 3], memory-mapped from
    # the prepared data, or float32 feature vectors [N, D] (embeddings)
    images: np.ndarray
    labels: np.ndarray  # int32 [N]
    class_scores: tuple[int, ...]
    masks: np.ndarray | None = None  # bool [N, S, S] subject masks, synthetic only
    keys: np.ndarray | None = None  # str [N]: the photo's filename (folder) or id (AVA, embeddings)
    # str [N]: the photo's content fingerprint (SHA-256 prefix of its file, or of its pixels)
    fingerprints: np.ndarray | None = None
    official_test: np.ndarray | None = None  # bool [N]: in the data set's own test list (AVA)
    # int32 [N]: the class a rater without noise gives (synthetic only; None where the truth
    # is unknown): labels != true_labels marks the mislabelled photos
    true_labels: np.ndarray | None = None
    skipped: tuple[dict, ...] = ()  # {item, where, reason} of each photo or line left out
    # Copies (same file bytes or pixels) and near-duplicates: the groups the splits keep
    # together (`duplicates.find`); None: every photo is its own group
    duplicates: duplicates_lib.Duplicates | None = None

    @property
    def groups(self) -> np.ndarray | None:
        """int64 [N]: each photo's group for the splits (its first member), or None."""
        return None if self.duplicates is None else self.duplicates.groups

    @property
    def num_classes(self) -> int:
        return len(self.class_scores)

    def __len__(self) -> int:
        return len(self.labels)


def from_scores(images, scores, masks=None, true_scores=None, **fields) -> Dataset:
    """A Dataset of scores [N]; `true_scores` [N] (the noiseless rater's, synthetic data) are
    mapped to `true_labels` by the same classes (their counts are the scores' own)."""
    scores = np.asarray(scores)
    class_scores = tuple(int(s) for s in np.unique(scores))
    labels = np.searchsorted(np.asarray(class_scores), scores).astype(np.int32)
    true_labels = None
    if true_scores is not None:
        true_scores = np.asarray(true_scores)
        if not np.isin(true_scores, class_scores).all():
            raise DataError("the noiseless scores hold a score the scores do not")
        true_labels = np.searchsorted(np.asarray(class_scores), true_scores).astype(np.int32)
    return Dataset(
        images=images,
        labels=labels,
        class_scores=class_scores,
        masks=masks,
        true_labels=true_labels,
        **fields,
    )
