"""Seeded synthetic "photos" with an aesthetic score 2..9 and a salient-subject mask.

Why: the RSRL method is about imbalanced aesthetics classes (AVA-like, most photos score 3-5, a
handful score 8-9). This module gives a small, deterministic, offline stand-in whose score is a
known function of what is visible in the pixels, so a CNN can actually learn it and tests can run
without downloading anything.

The photos themselves (background, clutter, one subject, camera faults) are drawn and
rendered by `data.scenes`; this module rates them and builds the data set.

Score rule: every factor is mapped to a goodness in [0, 1] and the weighted sum is the latent
quality ``q`` (``factors['quality']``). The easy-to-see factors weigh most:

    q = 1.0 contrast + 1.0 exposure + 1.0 sharpness + 0.8 tidiness (1 - clutter/6)
        + 0.6 thirds placement + 0.4 level horizon + 0.3 subject size

An ambiguous rater sees ``z(q) + label_noise * N(0, 1)`` (``z`` = standardisation over the data
set), so noise mostly swaps neighbouring scores. The noisy values are ranked and cut into classes
whose counts match ``SCORE_SHARES`` exactly (``class_counts``): the lowest get 2, the highest 9.
The same cut of ``q`` itself gives the noiseless rater's scores (``noiseless_scores``,
``true_scores``): where a photo's score differs from it, the photo is mislabelled.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from rsrl_jax.data import scenes
from rsrl_jax.data.scenes import FACTOR_NAMES, MAX_BLUR, MAX_CLUTTER, MAX_TILT, MIN_CONTRAST

SCORE_SHARES: dict[int, float] = {
    2: 0.03,
    3: 0.30,
    4: 0.38,
    5: 0.19,
    6: 0.06,
    7: 0.036,
    8: 0.0035,
    9: 0.0006,
}

# Weights of the goodness terms in the latent quality (see module docstring).
QUALITY_WEIGHTS: dict[str, float] = {
    "contrast": 1.0,
    "exposure": 1.0,
    "blur": 1.0,
    "clutter": 0.8,
    "placement": 0.6,
    "tilt": 0.4,
    "size": 0.3,
}
BEST_RADIUS = 0.13  # subject radius (fraction of the side) that scores best


@dataclasses.dataclass(frozen=True)
class SyntheticPhotos:
    """A generated data set; ``factors`` holds the per-image composition factors.

    ``factors`` keys: ``thirds_distance`` (subject centre to nearest thirds point, in image
    sides), ``contrast`` (0..1), ``clutter`` (count), ``exposure`` (-1 dark .. +1 washed out),
    ``blur`` (sigma in px at 64 px), ``tilt`` (absolute horizon tilt, degrees), ``size`` (subject
    area fraction) and ``quality`` (the noiseless latent the scores are ranked by).
    """

    images: np.ndarray  # uint8 [N, S, S, 3]
    scores: np.ndarray  # int32 [N], 2..9
    masks: np.ndarray  # bool [N, S, S]
    factors: dict[str, np.ndarray]  # float32 [N] each
    # int32 [N], 2..9: the noiseless rater's scores (`noiseless_scores` of the latent quality);
    # a photo whose `scores` differ is mislabelled. Equal to `scores` when label_noise = 0.
    true_scores: np.ndarray


def class_counts(num_examples: int) -> dict[int, int]:
    """Exact per-score counts for ``num_examples`` photos (largest-remainder rounding).

    Exact counts, rather than thresholds on q, make the class imbalance identical for every seed,
    so experiments on the tiny top classes are comparable.
    """
    if num_examples < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}")
    total = sum(SCORE_SHARES.values())
    raw = {s: share / total * num_examples for s, share in SCORE_SHARES.items()}
    counts = {s: math.floor(v) for s, v in raw.items()}
    left = num_examples - sum(counts.values())
    # Ties broken towards the more common score (stable, seed-independent).
    order = sorted(raw, key=lambda s: (-(raw[s] - counts[s]), -SCORE_SHARES[s], s))
    for s in order[:left]:
        counts[s] += 1
    return counts


def scores_by_rank(values: np.ndarray) -> np.ndarray:
    """int32 [N] scores of `values` [N]: ranked (stable argsort, ties to the lower index) and
    cut into classes of exactly `class_counts(N)` photos, the lowest values scoring 2, the
    highest 9. The one rank cut of the module: the rater's scores and the noiseless ones."""
    values = np.asarray(values)
    scores = np.empty(len(values), np.int32)
    order = np.argsort(values, kind="stable")
    start = 0
    for score, count in sorted(class_counts(len(values)).items()):
        scores[order[start : start + count]] = score
        start += count
    return scores


def standardised(quality: np.ndarray) -> np.ndarray:
    """z(q) [N]: the latent quality [N] standardised over the data set (a constant q gives 0)."""
    quality = np.asarray(quality, np.float64)
    std = quality.std()
    return (quality - quality.mean()) / (std if std > 0 else 1.0)


def noiseless_scores(quality: np.ndarray) -> np.ndarray:
    """int32 [N]: the scores a rater without noise gives: the rank cut (`scores_by_rank`) of the
    latent quality q [N] (`factors['quality']`) with the class counts of the noisy scores
    (`class_counts`). `generate(label_noise=0)` gives exactly these scores (from its float64 q;
    its float32 `factors['quality']` can order near-ties otherwise: use `true_scores`)."""
    return scores_by_rank(standardised(quality))


def _goodness(f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Maps raw factors to goodness in [0, 1] (1 = best); see QUALITY_WEIGHTS."""
    size_r = np.sqrt(f["size"] / np.pi)  # equivalent radius
    return {
        "contrast": (f["contrast"] - MIN_CONTRAST) / (1 - MIN_CONTRAST),
        "exposure": 1 - np.abs(f["exposure"]),
        "blur": 1 - f["blur"] / MAX_BLUR,
        "clutter": 1 - f["clutter"] / MAX_CLUTTER,
        "placement": 1 - np.minimum(f["thirds_distance"] / 0.2, 1),
        "tilt": 1 - f["tilt"] / MAX_TILT,
        "size": 1 - np.minimum(np.abs(np.log(size_r / BEST_RADIUS)) / np.log(2), 1),
    }


def generate(
    num_examples: int = 3100, image_size: int = 64, seed: int = 0, label_noise: float = 0.1
) -> SyntheticPhotos:
    """Generates ``num_examples`` photos; the same arguments give bit-identical output.

    Image ``i`` depends only on ``(seed, i)`` (and the size it is rendered at), not on
    ``num_examples`` or ``label_noise``; the scores depend on the whole set because they are
    assigned by rank to match ``SCORE_SHARES`` exactly.
    """
    if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)):
        raise ValueError(f"num_examples must be an int, got {num_examples!r}")
    if num_examples < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise ValueError(f"image_size must be an int, got {image_size!r}")
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32 pixels, got {image_size}")
    if not label_noise >= 0:  # also rejects NaN
        raise ValueError(f"label_noise must be >= 0, got {label_noise}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    n, size = int(num_examples), int(image_size)

    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), bool)
    raw = {k: np.empty(n, np.float64) for k in FACTOR_NAMES}
    for i in range(n):
        drawn = scene(seed, i)
        images[i], masks[i] = scenes.render(drawn, size)
        for name, value in scenes.factors(drawn).items():
            raw[name][i] = value

    rated = rate(raw, seed, label_noise)
    return SyntheticPhotos(
        images=images,
        scores=rated.scores,
        masks=masks,
        factors=rated.factors,
        true_scores=rated.true_scores,
    )


@dataclasses.dataclass(frozen=True)
class Rated:
    """What the rater makes of scenes' factors: `factors` (float32 [N] each, with `quality`),
    `scores` and `true_scores` (int32 [N], as `SyntheticPhotos`'), `quality` (float64 [N])."""

    factors: dict[str, np.ndarray]
    scores: np.ndarray
    true_scores: np.ndarray
    quality: np.ndarray


def rate(raw: dict[str, np.ndarray], seed: int, label_noise: float) -> Rated:
    """The rater's scores of scenes whose factors are `raw` (`FACTOR_NAMES`, float64 [N]
    each): the latent quality, its noisy rank cut (noise stream `(seed, 1)`) and the
    noiseless one. The one rater of the photos and of `data.synthetic_embeddings`."""
    good = _goodness(raw)
    quality = sum(QUALITY_WEIGHTS[k] * good[k] for k in QUALITY_WEIGHTS)
    z = standardised(quality)
    noise_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    noisy = z + label_noise * noise_rng.standard_normal(len(z))
    factors = {k: np.asarray(v).astype(np.float32) for k, v in raw.items()}
    factors["quality"] = quality.astype(np.float32)
    return Rated(factors, scores_by_rank(noisy), noiseless_scores(quality), quality)


def scene(seed: int, i: int) -> dict:
    """Photo `i`'s scene (`scenes.sample_scene`) from its own stream `(seed, (0, i))`."""
    return scenes.sample_scene(
        np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, i)))
    )


def rated_scenes(num_examples: int, seed: int, label_noise: float) -> tuple[list[dict], Rated]:
    """The scenes of `generate(num_examples, ..., seed, label_noise)` and their ratings,
    without rendering a pixel: the same factors and scores as the photos' (rendering draws
    nothing from a scene's stream)."""
    drawn = [scene(seed, i) for i in range(num_examples)]
    each = [scenes.factors(p) for p in drawn]
    raw = {k: np.array([f[k] for f in each], np.float64) for k in FACTOR_NAMES}
    return drawn, rate(raw, seed, label_noise)
