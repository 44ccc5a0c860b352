"""Synthetic embeddings with a known rater (`data.name='synthetic_embeddings'`).

Users mostly train aesthetic heads on frozen features (CLIP, SigLIP); this data set stands in
for them with a rater whose truth is known. Photo i is the demo's scene i (`data.synthetic`:
the same seed gives the same scenes, scores and noiseless scores as the demo's photos), never
rendered. Its vector, float32 [DIM]:

    x = latent @ MAP + sigma * N(0, I)

`latent` [LATENT] holds, each standardised over the data set, the latent quality z(q) the
rater scores, the goodness of its seven factors, and the content the rater ignores (landscape
or backdrop, sky, ground, subject shape, one-hot). `MAP` [LATENT, DIM] is one fixed random
map (drawn from `MAP_SEED`, the same for every seed: a frozen backbone), scaled so that the
signal has variance about 1 per value. `sigma` is the feature strength (`STRENGTHS`), the
noise drawn from the stream `(seed, 3)` (photos 0, rater 1, pretext 2).

The scores keep the demo's class shares (`synthetic.scores_by_rank`) and its rater noise
(`data.label_noise`); `true_labels` carry the noiseless rater's, so the selection diagnostics
(`analysis.selection_truth`) and the ceilings command work on it. Generated in memory.
"""

import functools
import math

import numpy as np

from rsrl_jax.data import scenes, synthetic

DIM = 128  # values a vector (as configs/embeddings.py's benchmark's vectors)
MAP_SEED = 29  # the fixed map's stream: the "backbone", the same for every seed
NOISE_STREAM = 3  # spawn key of the vectors' noise (synthetic: photos 0, rater 1; pretext 2)
# Named feature strengths -> the noise std sigma, each defined by the macro F a logistic
# regression (scikit-learn, C = 1) reaches on 3100 vectors of a noiseless rater
# (data.label_noise = 0), stratified 5-fold, seed 0 (`python tools/synthetic_strengths.py
# --seeds=0`, macro F over the classes present): weak 0.22, medium 0.33, strong 0.54.
STRENGTHS = {"weak": 4.0, "medium": 2.0, "strong": 0.5}


# latent values: z(q), the seven goodness terms, landscape, sky, ground and shape one-hots
LATENT = 1 + len(synthetic.QUALITY_WEIGHTS) + 1 + len(scenes.SKIES) + len(scenes.GROUNDS)
LATENT += len(scenes.SHAPES)


def noise_std(strength: str) -> float:
    """sigma of a feature strength: a level of `STRENGTHS` or a number >= 0 (as text);
    ValueError naming the levels otherwise."""
    if strength in STRENGTHS:
        return STRENGTHS[strength]
    try:
        sigma = float(strength)
    except (TypeError, ValueError):
        sigma = math.nan
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(
            f"{strength!r} is neither a level ({', '.join(STRENGTHS)}) nor a noise std >= 0"
        )
    return sigma


def latent(drawn: list[dict], rated: synthetic.Rated) -> np.ndarray:
    """float64 [N, LATENT]: z(q), the seven goodness terms, the content one-hots, each
    column standardised over the N scenes (a constant column is 0)."""
    good = synthetic._goodness({k: rated.factors[k].astype(np.float64) for k in rated.factors})
    columns = [synthetic.standardised(rated.quality)]
    columns += [good[k] for k in synthetic.QUALITY_WEIGHTS]
    columns.append(np.array([p["landscape"] for p in drawn], np.float64))
    for key, choices in (
        ("sky", range(len(scenes.SKIES))),
        ("ground", range(len(scenes.GROUNDS))),
        ("shape", scenes.SHAPES),
    ):
        values = np.array([p[key] for p in drawn])
        columns += [(values == c).astype(np.float64) for c in choices]
    return np.stack([synthetic.standardised(c) for c in columns], axis=1)


def fixed_map() -> np.ndarray:
    """float64 [LATENT, DIM]: the one random map, N(0, 1 / LATENT) entries."""
    rng = np.random.default_rng(np.random.SeedSequence(MAP_SEED))
    return rng.standard_normal((LATENT, DIM)) / math.sqrt(LATENT)


@functools.lru_cache(maxsize=32)
def generate(num_examples: int, seed: int, label_noise: float, strength: str):
    """(vectors float32 [N, DIM], scores int32 [N], true_scores int32 [N]), read-only: the
    same arguments give bit-identical output (kept for the process: a study's runs of one
    seed share them; drawing the scenes takes about 1 ms each). ValueError for a bad
    strength."""
    sigma = noise_std(strength)
    drawn, rated = synthetic.rated_scenes(num_examples, seed, label_noise)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(NOISE_STREAM,)))
    x = latent(drawn, rated) @ fixed_map()
    x += sigma * rng.standard_normal(x.shape)
    out = x.astype(np.float32), rated.scores, rated.true_scores
    for array in out:
        array.flags.writeable = False
    return out


def load(config):
    """The `dataset.Dataset` of `config.data` (num_examples, label_noise, feature_strength)
    and `config.seed`: vectors as `images`, keys `synthetic_NNNNNN` (the demo photos'),
    the noiseless rater's `true_labels`."""
    from rsrl_jax.data import dataset, embeddings_dataset

    x, scores, true_scores = generate(
        config.data.num_examples,
        config.seed,
        config.data.label_noise,
        config.data.feature_strength,
    )
    return dataset.from_scores(
        x,
        scores,
        true_scores=true_scores,
        keys=np.array([f"synthetic_{i:06d}" for i in range(len(x))]),
        fingerprints=embeddings_dataset.fingerprints(x),
    )
