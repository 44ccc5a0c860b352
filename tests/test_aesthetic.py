"""The aesthetic figures (SRCC, PLCC, MAE, RMSE, binary accuracy) against scipy and
scikit-learn, their undefined cases, and the `eval.good_threshold` field."""

import json
import logging

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from conftest import tiny_config
from rsrl_jax.config import result_changing_fields, validate, validate_with_data
from rsrl_jax.metrics import aesthetic, fold_stats

SCORES = np.arange(2, 10)  # class scores 2..9


def oracle(true, pred, threshold):
    return {
        "srcc": stats.spearmanr(pred, true).statistic,
        "plcc": stats.pearsonr(pred, true).statistic,
        "mae": skm.mean_absolute_error(true, pred),
        "rmse": skm.root_mean_squared_error(true, pred),
        "binary_accuracy": skm.accuracy_score(true > threshold, pred > threshold),
    }


@pytest.mark.parametrize("seed", range(4))
def test_matches_scipy_and_sklearn_on_random_predictions(seed):
    rng = np.random.default_rng(seed)
    true = rng.choice(SCORES, size=300, p=[0.02, 0.08, 0.2, 0.3, 0.2, 0.12, 0.06, 0.02])
    logits = rng.normal(size=(300, len(SCORES))) * 2 + (true[:, None] == SCORES) * 1.5
    pred = aesthetic.expected_scores(logits, SCORES)
    threshold = [5.0, 4.5, 6.0, 5.5][seed]
    got = aesthetic.aesthetic_report(true, pred, threshold)
    assert list(got) == list(aesthetic.FIGURES)
    assert got == pytest.approx(oracle(true, pred, threshold), rel=1e-12)


def test_ties_in_predictions_share_their_rank():
    rng = np.random.default_rng(7)
    true = rng.integers(3, 8, 200)
    pred = np.round(true + rng.normal(0, 1.2, 200))  # few distinct values: many ties
    assert len(np.unique(pred)) < 12
    got = aesthetic.aesthetic_report(true, pred, 5.0)
    assert got == pytest.approx(oracle(true, pred, 5.0), rel=1e-12)
    # with ties, Spearman is Pearson of the average ranks (not of ordinal ones)
    ranks = stats.pearsonr(stats.rankdata(pred), stats.rankdata(true)).statistic
    assert got["srcc"] == pytest.approx(ranks)


def test_expected_score_is_the_softmax_weighted_mean():
    logits = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, -10.0], [1.0, 2.0, 3.0]], np.float32)
    scores = [3, 5, 8]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(aesthetic.probabilities(logits), p, rtol=1e-6)
    np.testing.assert_allclose(aesthetic.expected_scores(logits, scores), p @ scores, rtol=1e-6)
    assert aesthetic.expected_scores(logits, scores)[0] == pytest.approx(16 / 3)


def test_threshold_is_strict_on_both_sides():
    # true 5 is not good; an expected score of exactly 5 is not good either
    got = aesthetic.aesthetic_report([5, 5, 6, 6], [5.0, 5.01, 5.0, 7.0], 5.0)
    assert got["binary_accuracy"] == 0.5  # right: (5, 5.0), (6, 7.0)


@pytest.mark.parametrize(
    "true, pred",
    [
        ([3, 5, 7, 4], [5.2, 5.2, 5.2, 5.2]),  # a network that scores every photo alike
        ([6, 6, 6, 6], [5.1, 6.3, 4.9, 7.0]),  # a split of one score
        ([4], [4.5]),  # one photo
    ],
)
def test_an_undefined_correlation_is_none_and_the_json_stays_strict(true, pred):
    got = aesthetic.aesthetic_report(true, pred, 5.0)
    assert got["srcc"] is None and got["plcc"] is None
    true, pred = np.asarray(true), np.asarray(pred)
    # the errors and the binary accuracy stay defined
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(true, pred))
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(true, pred))
    assert got["binary_accuracy"] == pytest.approx(skm.accuracy_score(true > 5, pred > 5))
    json.dumps(got, allow_nan=False)  # no NaN: strict JSON
    # scipy itself gives NaN (or refuses one photo): that is what None stands for
    if len(true) > 1:
        with pytest.warns(stats.ConstantInputWarning):
            assert np.isnan(stats.spearmanr(pred, true).statistic)
        with pytest.warns(stats.ConstantInputWarning):
            assert np.isnan(stats.pearsonr(pred, true).statistic)
    else:
        with pytest.raises(ValueError, match="at least 2"):
            stats.pearsonr(pred, true)


def test_an_empty_split_has_no_figure():
    assert aesthetic.aesthetic_report([], [], 5.0) == dict.fromkeys(aesthetic.FIGURES)
    with pytest.raises(ValueError, match="need"):
        aesthetic.aesthetic_report([1, 2], [1.0], 5.0)


def test_folds_with_an_undefined_figure_are_left_out_of_the_mean():
    parts = [{"srcc": 0.5}, {"srcc": None}, {"srcc": 0.3}, {}]  # {}: a record before them
    assert fold_stats.figure_stats(parts, "srcc") == pytest.approx(
        {"mean": 0.4, "std": 0.1, "n": 2}
    )
    assert fold_stats.figure_stats([{"srcc": None}], "srcc")["n"] == 0


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -float("inf")])
def test_a_threshold_that_is_no_number_is_named(value):
    config = tiny_config()
    config.eval.good_threshold = value
    with pytest.raises(ValueError) as raised:
        validate(config)
    assert str(raised.value) == (
        f"config.eval.good_threshold={value!r}: must be a finite number: a photo is good when "
        "its score is above it (AVA: 5.0)"
    )
    assert "\n" not in str(raised.value)


def test_a_threshold_that_does_not_split_the_scores_is_told(caplog):
    config = tiny_config()
    validate(config)  # the default, 5.0
    with caplog.at_level(logging.WARNING):
        validate_with_data(config, (1, 2, 3, 4, 5, 6), [5] * 6)
        assert not caplog.records
        config.eval.good_threshold = 6.0  # every score <= 6: no photo is good
        validate_with_data(config, (1, 2, 3, 4, 5, 6), [5] * 6)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(
        "config.eval.good_threshold=6.0 does not split the data's scores (1, 2, 3, 4, 5, 6): "
        "every photo is not good"
    )
    assert "--config.eval.good_threshold=T with 1 <= T < 6" in line


def test_a_resume_refuses_another_threshold_and_reads_older_runs_as_the_default():
    recorded = tiny_config().to_dict()
    assert result_changing_fields(
        recorded, tiny_config({"eval.good_threshold": 6.0}).to_dict()
    ) == ["eval.good_threshold: 5.0 -> 6.0"]
    del recorded["eval"]  # a run recorded before the field: its figures used none, 5.0 fits
    assert result_changing_fields(recorded, tiny_config().to_dict()) == []


def test_a_forced_resume_cannot_change_the_threshold(tmp_path):
    # Rounds already recorded were measured at the old threshold: even resume=force would
    # report them under the new one, so the change is refused outright.
    import json

    from rsrl_jax import errors, workdir_files
    from rsrl_jax.config import base_config
    from rsrl_jax.run import resume

    recorded = base_config()
    (tmp_path / workdir_files.CONFIG).write_text(json.dumps(recorded.to_dict()))
    config = base_config()
    config.eval.good_threshold = 4.5
    config.resume = "force"
    with pytest.raises(errors.ConfigError, match="eval.good_threshold.*not even with resume"):
        resume.check_config(config, str(tmp_path))
    config.eval.good_threshold = recorded.eval.good_threshold
    config.train.learning_rate = 0.5  # an ordinary result-changing field: force lets it go
    assert resume.check_config(config, str(tmp_path)) is not None
