"""data.name=synthetic_embeddings: the demo's scenes and rater as vectors, generated in memory."""

import numpy as np
import pytest

from rsrl_jax import errors
from rsrl_jax.config import validate
from rsrl_jax.data import datasets, synthetic
from rsrl_jax.data import synthetic_embeddings as se

N = 300


def fresh(*args):
    """`generate` uncached: a second call computes again rather than returning the first."""
    return se.generate.__wrapped__(*args)


def test_deterministic_given_the_seed_and_the_demo_photos_scores():
    x, scores, true = fresh(N, 3, 0.5, "medium")
    again = fresh(N, 3, 0.5, "medium")
    assert x.dtype == np.float32 and x.shape == (N, se.DIM)
    for a, b in zip((x, scores, true), again, strict=True):
        assert a.tobytes() == b.tobytes()
    other = fresh(N, 4, 0.5, "medium")
    assert not np.array_equal(x, other[0]) and not np.array_equal(scores, other[1])
    # the same scenes and rater as the demo's photos of that seed
    photos = synthetic.generate(40, 32, seed=3, label_noise=0.5)
    _, small_scores, small_true = fresh(40, 3, 0.5, "weak")
    np.testing.assert_array_equal(small_scores, photos.scores)
    np.testing.assert_array_equal(small_true, photos.true_scores)


def test_class_shares_and_rater_noise():
    _, clean, true = fresh(N, 0, 0.0, "medium")
    np.testing.assert_array_equal(clean, true)  # a noiseless rater: nothing mislabelled
    counts = synthetic.class_counts(N)
    for noise in (0.0, 0.3, 1.0):
        _, scores, _ = fresh(N, 0, noise, "medium")
        found, how_many = np.unique(scores, return_counts=True)
        assert dict(zip(found.tolist(), how_many.tolist(), strict=True)) == {
            s: c for s, c in counts.items() if c
        }
    wrong = [np.mean(fresh(N, 0, n, "medium")[1] != true) for n in (0.3, 1.0)]
    assert 0 < wrong[0] < wrong[1]


def test_feature_strength_orders_how_well_the_vectors_show_quality():
    _, rated = synthetic.rated_scenes(N, 1, 0.0)
    q = synthetic.standardised(rated.quality)
    r2 = []
    for level in ("weak", "medium", "strong"):
        x = fresh(N, 1, 0.0, level)[0].astype(np.float64)
        train, test = slice(0, 200), slice(200, None)
        design = np.c_[x, np.ones(N)]
        w = np.linalg.lstsq(design[train], q[train], rcond=None)[0]
        r2.append(1 - np.var(q[test] - design[test] @ w) / np.var(q[test]))
    assert r2[0] < r2[1] < r2[2] and r2[2] > 0.8
    assert se.noise_std("1.5") == 1.5
    with pytest.raises(ValueError, match="weak, medium, strong"):
        se.noise_std("huge")


def test_dataset_and_config(tiny_embeddings_config):
    config = tiny_embeddings_config
    validate(config, {})
    data = datasets.load(config)
    assert data.images.shape == (80, se.DIM) and data.true_labels is not None
    assert data.keys[0] == "synthetic_000000"
    bad = config.copy_and_resolve_references()
    bad.data.feature_strength = "loud"
    with pytest.raises(errors.ConfigError, match="data.feature_strength"):
        validate(bad, {})
    bad = config.copy_and_resolve_references()
    bad.data.dir = "somewhere"
    with pytest.raises(errors.ConfigError, match="data.dir"):
        validate(bad, {})


@pytest.fixture
def tiny_embeddings_config():
    from configs import synthetic_embeddings

    config = synthetic_embeddings.get_config()
    config.data.num_examples = 80
    return config


def test_the_highlight_skip_line_names_the_runs_data_name(tiny_embeddings_config):
    from rsrl_jax.data import inputs

    line = inputs.no_highlights(tiny_embeddings_config.to_dict())
    assert f"data.name={tiny_embeddings_config.data.name!r}" in line
    assert (
        inputs.no_highlights({"data": {"name": "synthetic"}, "model": {"name": "alexnet"}}) is None
    )
