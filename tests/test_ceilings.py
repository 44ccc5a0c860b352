"""The synthetic photos' ceilings: thresholds on the latent quality, trees on the factors."""

import subprocess
import sys

import numpy as np
import pytest

from conftest import TINY_OVERRIDES, run_cli, tiny_config
from rsrl_jax.analysis import ceilings
from rsrl_jax.errors import ConfigError


def test_latent_quality_thresholds_are_the_training_shares_quantiles():
    # Training: q = 0..9, classes 0 x3, 1 x5, 2 x2 -> thresholds at q's 0.3 and 0.8 quantiles.
    q_train = np.arange(10.0)
    y_train = np.array([0] * 3 + [1] * 5 + [2] * 2)
    thresholds = np.quantile(q_train, [0.3, 0.8])  # 2.7 and 7.2
    q_test = np.array([-1.0, 2.7, 2.71, 7.19, 7.2, 100.0])
    got = ceilings.latent_quality_prediction(q_train, y_train, q_test, 3)
    np.testing.assert_array_equal(got, [0, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(np.searchsorted(thresholds, q_test, side="right"), got)


def test_ceilings_on_the_runs_own_folds():
    config = tiny_config({"data.num_examples": 400, "protocol.folds": 2})
    folds = ceilings.ceilings(config)
    assert [f["fold"] for f in folds] == [0, 1]
    for f in folds:
        # Knowing q is worth more than knowing the factors without the rater's formula.
        assert 0.3 < f["latent_quality"] <= 1.0
        assert 0.0 < f["scene_factors"] < f["latent_quality"]
    # A noiseless rater: thresholds on q are exact up to where the fitted cut falls.
    config.data.label_noise = 0.0
    assert np.mean([f["latent_quality"] for f in ceilings.ceilings(config)]) > 0.9


def test_ceilings_need_a_known_rater():
    config = tiny_config({"data.name": "'folder'", "data.dir": "'photos'"})
    with pytest.raises(ConfigError, match="ceilings need a known rater: the synthetic photos"):
        ceilings.ceilings(config)
    # the synthetic embeddings rate the demo's scenes: the same ceilings, on the same splits
    photos = ceilings.ceilings(tiny_config({"data.num_examples": 200}))
    vectors = ceilings.ceilings(
        tiny_config({"data.num_examples": 200, "data.name": "'synthetic_embeddings'"})
    )
    assert vectors == photos and photos[0]["latent_quality"] > 0


def test_ceilings_command_prints_ceilings_and_a_runs_figures(tmp_path):
    workdir = tmp_path / "run"
    overrides = {**TINY_OVERRIDES, "data.num_examples": 80}
    run_cli(workdir, overrides)
    cmd = [sys.executable, "-m", "rsrl_jax.ceilings", "--config=configs/demo.py"]
    cmd += [f"--config.{k}={v}" for k, v in overrides.items()]
    result = subprocess.run(
        cmd + [f"--workdirs={workdir}"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "ceiling, latent quality:" in out and "ceiling, scene factors:" in out
    assert f"{workdir}: round 1 train accuracy on D" in out
    figures = ceilings.run_figures(str(workdir))
    assert f"test macro F {figures['round1_test_macro_f1']['mean']:.3f}" in out


def test_ceilings_seeds_come_from_the_runs_and_must_agree_with_them():
    assert ceilings.seeds_for([], {}, 7) == [7]
    assert ceilings.seeds_for([], {"a": 2, "b": 0, "c": 2}, 7) == [2, 0]
    assert ceilings.seeds_for([0, 1], {"a": 1}, 7) == [0, 1]
    with pytest.raises(ConfigError, match="a is a run of seed 2; add it to --seeds"):
        ceilings.seeds_for([0, 1], {"a": 2}, 7)
