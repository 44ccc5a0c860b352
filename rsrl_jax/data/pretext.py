"""The pretext corpus: synthetic photos labelled by what they show and what was done to them.

The demo's backbone is pretrained the way the field pretrains one: on other photos and other
labels than the task's. The photos are drawn by the same scene model as the demo's
(`data.scenes`) but from another random stream (`SeedSequence(seed, (2, i))`, where the
demo's photos use `(0, i)`), so no pretext photo is a demo photo. Their labels are never a
score: scene content (the subject's shape, landscape or backdrop, the sky, the ground) and
the photographic distortions applied with their levels (blur, exposure, contrast, clutter),
as image-quality models are pretrained to tell distortion types and levels on synthetically
distorted photos before they learn human ratings (DB-CNN, Zhang et al. 2020, §III-A).

The distortions are among the factors the demo's synthetic rater scores (`data.synthetic`),
which is why the pretrained backbone makes the demo much easier than real photos are.

Labels: `LABELS` maps each label to its classes; `generate` returns them as int32 [N, L]
columns in that order. Levels are equal-width bins of a factor's range.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rsrl_jax.data import scenes

LEVELS = 5  # bins of each distortion's range

# label -> number of classes. Sky and ground have one more class: "none" (a backdrop).
LABELS: dict[str, int] = {
    "shape": len(scenes.SHAPES),
    "background": 2,  # landscape, backdrop
    "sky": len(scenes.SKIES) + 1,
    "ground": len(scenes.GROUNDS) + 1,
    "blur": LEVELS,
    "exposure": LEVELS,
    "contrast": LEVELS,
    "clutter": scenes.MAX_CLUTTER + 1,  # the number of distractor shapes
}

# The random stream of pretext photos (`data.synthetic` uses 0 for its photos, 1 for noise).
STREAM = 2


@dataclasses.dataclass(frozen=True)
class PretextPhotos:
    images: np.ndarray  # uint8 [N, S, S, 3]
    labels: np.ndarray  # int32 [N, len(LABELS)], columns in LABELS order


def _level(value: float, low: float, high: float) -> int:
    """The bin (0..LEVELS-1) of `value` among LEVELS equal bins of [low, high]."""
    return int(min(max((value - low) / (high - low), 0.0), 1.0 - 1e-9) * LEVELS)


def labels_of(scene: dict) -> list[int]:
    """A scene's pretext labels, in `LABELS` order (see `scenes.sample_scene` for fields)."""
    landscape = scene["landscape"]
    none_sky, none_ground = len(scenes.SKIES), len(scenes.GROUNDS)
    return [
        scenes.SHAPES.index(scene["shape"]),
        0 if landscape else 1,
        scene["sky"] if landscape else none_sky,
        scene["ground"] if landscape else none_ground,
        _level(scene["blur"], 0.0, scenes.MAX_BLUR),
        _level(scene["exposure"], -1.0, 1.0),
        _level(scene["contrast"], scenes.MIN_CONTRAST, 1.0),
        len(scene["clutter"]),
    ]


def generate(num_examples: int, image_size: int, seed: int) -> PretextPhotos:
    """`num_examples` labelled pretext photos at `image_size` px; bit-identical per arguments.

    Photo i depends only on (seed, i) and the size, as in `data.synthetic.generate`.
    """
    if num_examples < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}")
    images = np.empty((num_examples, image_size, image_size, 3), np.uint8)
    labels = np.empty((num_examples, len(LABELS)), np.int32)
    for i in range(num_examples):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM, i)))
        scene = scenes.sample_scene(rng)
        images[i], _ = scenes.render(scene, image_size)
        labels[i] = labels_of(scene)
    return PretextPhotos(images=images, labels=labels)
