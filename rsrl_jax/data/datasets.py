"""Loading a data set named by the config into memory as decoded uint8 photos."""

import dataclasses

import ml_collections
import numpy as np

from rsrl_jax.data import synthetic


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Decoded photos and their classes.

    `labels` are class indices; `class_scores[labels]` gives the aesthetic score. The class
    list is the scores present in the data, sorted.
    """

    images: np.ndarray  # uint8 [N, S, S, 3]
    labels: np.ndarray  # int32 [N]
    class_scores: tuple[int, ...]
    masks: np.ndarray | None = None  # bool [N, S, S] subject masks, synthetic only

    @property
    def num_classes(self) -> int:
        return len(self.class_scores)

    def __len__(self) -> int:
        return len(self.labels)


def from_scores(images, scores, masks=None) -> Dataset:
    scores = np.asarray(scores)
    class_scores = tuple(int(s) for s in np.unique(scores))
    labels = np.searchsorted(np.asarray(class_scores), scores).astype(np.int32)
    return Dataset(images=images, labels=labels, class_scores=class_scores, masks=masks)


def load(config: ml_collections.ConfigDict) -> Dataset:
    if config.data.name == "synthetic":
        photos = synthetic.generate(
            num_examples=config.data.num_examples,
            image_size=config.data.image_size,
            seed=config.seed,
            label_noise=config.data.label_noise,
        )
        return from_scores(photos.images, photos.scores, photos.masks)
    raise ValueError(f"config.data.name={config.data.name!r}: unknown data set")
