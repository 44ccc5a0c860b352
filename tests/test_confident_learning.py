"""Confident learning's selection: its drops are cleanlab's on the same probabilities (majority
classes only), random_drop matches its counts, the cross-fitting is out of sample, and a tiny
run goes end to end. Lanes against runs alone: tests/test_lanes.py (every compare part)."""

import json
import logging
import re
import types

import numpy as np
import pytest
from absl import logging as absl_logging
from cleanlab.filter import find_label_issues
from test_embeddings_run import vectors
from test_lanes import base_config as lanes_config

from conftest import read_records
from rsrl_jax import errors
from rsrl_jax.config import base_config, validate
from rsrl_jax.data import embeddings
from rsrl_jax.engine import cross_fit
from rsrl_jax.experiments import compare, study
from rsrl_jax.method import confident_learning, selection


def noisy_probabilities(n=600, classes=4, seed=0):
    """(probabilities [n, C] whose argmax is the true class, given labels with a fifth moved
    to another class, the majority classes): the label issues are known to exist."""
    rng = np.random.default_rng(seed)
    true = rng.choice(classes, n, p=[0.4, 0.3, 0.2, 0.1])
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), true] += 3.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = true.copy()
    moved = rng.random(n) < 0.2
    labels[moved] = (true[moved] + rng.integers(1, classes, moved.sum())) % classes
    return probs, labels, selection.majority_classes(labels, classes, 3)


def cl_config(selection_="confident_learning", rule="rsrl"):
    config = base_config()
    config.method.selection = selection_
    config.method.random_drop_rule = rule
    return config


@pytest.mark.parametrize("filter_by", ["prune_by_noise_rate", "both"])
def test_drops_are_cleanlabs_issues_of_the_majority_classes(filter_by):
    probs, labels, majority = noisy_probabilities()
    config = cl_config()
    config.method.cl_filter_by = filter_by
    keep, warnings = selection.next_training_set(
        config, None, labels, 4, [1, 2, 3, 4], majority, None, 0, 2, pred_probs=probs
    )
    issues = find_label_issues(labels, probs, filter_by=filter_by)
    minority = ~np.isin(labels, majority)
    assert warnings == []
    np.testing.assert_array_equal(keep, ~(issues & ~minority))
    assert (issues & minority).any() and keep[minority].all()  # minority issues stay
    assert 0 < (~keep).sum() < (issues & ~minority).sum() + 1


def test_random_drop_at_confident_learnings_counts():
    probs, labels, majority = noisy_probabilities()
    args = (None, labels, 4, [1, 2, 3, 4], majority, None, 0, 2)
    cl, _ = selection.next_training_set(cl_config(), *args, pred_probs=probs)
    drawn, _ = selection.next_training_set(
        cl_config("random_drop", "confident_learning"), *args, pred_probs=probs
    )
    for c in range(4):
        assert drawn[labels == c].sum() == cl[labels == c].sum()
    assert (drawn != cl).any()  # the same counts, other samples
    again, _ = selection.next_training_set(
        cl_config("random_drop", "confident_learning"), *args, pred_probs=probs
    )
    np.testing.assert_array_equal(again, drawn)  # a function of (seed, fold, round)


def test_cleanlabs_few_examples_warning_is_said_once_by_score(recwarn):
    probs, labels, _ = noisy_probabilities()
    labels = labels.copy()
    lone = np.flatnonzero(labels == 3)
    labels[lone[1:]] = 2  # class 3 (score 7) keeps one photo: cleanlab cannot prune it fully
    keep, warnings = selection.next_training_set(
        cl_config(), None, labels, 4, [4, 5, 6, 7], [3, 2, 1], None, 1, 2, pred_probs=probs
    )
    assert warnings == [
        "fold 1 round 2: confident learning may not flag all label issues of score 7: too few "
        "photos in D for cleanlab (photos per score: 7: 1)"
    ]
    assert not [w for w in recwarn if "May not flag" in str(w.message)]  # not said twice
    # a minority class's warning is moot: nothing of it is dropped
    _, warnings = selection.next_training_set(
        cl_config(), None, labels, 4, [4, 5, 6, 7], [2, 1], None, 1, 2, pred_probs=probs
    )
    assert warnings == [] and keep.dtype == bool


def test_a_cleanlab_warning_does_not_hide_a_kept_set_below_one_batch(caplog):
    from rsrl_jax.engine import evaluation

    config = cl_config()
    keep = np.zeros(100, bool)
    keep[:3] = True
    with caplog.at_level(logging.WARNING):
        evaluation.log_selection(config, 0, 2, keep, ["fold 0 round 2: confident learning x"])
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == "fold 0 round 2: confident learning x"
    assert "only 3 samples kept, fewer than one batch" in said[1]


def test_parts_are_stratified_and_fixed_by_seed_and_fold():
    labels = np.repeat([0, 1, 2], [40, 13, 7])
    part = confident_learning.parts(labels, 4, seed=3, fold=1)
    for c in range(3):
        counts = np.bincount(part[labels == c], minlength=4)
        assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(part, confident_learning.parts(labels, 4, seed=3, fold=1))
    assert (part != confident_learning.parts(labels, 4, seed=3, fold=2)).any()


def test_bad_cl_fields_are_one_line_each():
    for field, value in [("cl_folds", 1), ("cl_epochs", 0), ("cl_filter_by", "x")]:
        config = cl_config()
        config.method[field] = value
        with pytest.raises(errors.ConfigError, match=f"method.{field}"):
            validate(config)


@pytest.fixture(scope="module")
def emb_config(tmp_path_factory):
    """The embeddings test config (one fold of 2 short rounds, test_lanes') with
    confident_learning, on 200 vectors."""
    root = tmp_path_factory.mktemp("cl_data")
    x, scores = vectors(200, seed=0)
    embeddings.write(str(root / "emb"), x, [f"p{i}.jpg" for i in range(len(x))], scores)
    config = lanes_config(root / "emb")
    config.method.selection = "confident_learning"
    config.log.progress = True  # the cross-fitting's epoch lines are checked
    return config


@pytest.fixture(scope="module")
def cl_run(emb_config, tmp_path_factory):
    """compare of confident_learning and its control (as lanes: rsrl_jax.compare), tiny, 3
    rounds, in this process, with the cross-fitting's rounds, training sets, batches and
    scored photos recorded."""
    seen = {"fits": [], "fit_rounds": [], "orders": [], "scored": [], "lines": []}
    real_fit, real_sampling, real_placement = (
        cross_fit.fit_copies,
        cross_fit.sampling,
        cross_fit.placement,
    )

    def fit(exp, lanes, params, copies, round_, label):
        fitted = real_fit(exp, lanes, params, copies, round_, label)
        seen["fits"].append(([(c[2], c[3], lanes[c[0]].split.train) for c in copies], fitted))
        seen["fit_rounds"].append(round_)
        return fitted

    def epoch_order(rng, kept, *args):
        order = real_sampling.epoch_order(rng, kept, *args)
        seen["orders"].append((kept, order))
        return order

    def predict_logits(step, params, images, indices, *args):
        seen["scored"].append((params, np.asarray(indices)))
        return real_placement.predict_logits(step, params, images, indices, *args)

    placement = types.SimpleNamespace(
        **{n: getattr(real_placement, n) for n in dir(real_placement) if n[0] != "_"}
    )
    placement.predict_logits = predict_logits
    workdir = tmp_path_factory.mktemp("cl_run")
    config = emb_config.copy_and_resolve_references()
    config.rsrl.rounds = 3
    methods = ["confident_learning", "random_drop_cl"]
    study.check_grid(methods, [0], [0.1])  # study's method list is compare's
    lines = logging.Handler()
    lines.emit = lambda r: seen["lines"].append(r.getMessage())
    logging.getLogger("absl").addHandler(lines)
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cross_fit, "fit_copies", fit)
        patch.setattr(cross_fit, "sampling", types.SimpleNamespace(epoch_order=epoch_order))
        patch.setattr(cross_fit, "placement", placement)
        try:
            compare.compare(config, str(workdir), methods)
        finally:
            logging.getLogger("absl").removeHandler(lines)
            absl_logging.set_verbosity(verbosity)
    return workdir, seen, config


def test_cross_fitting_says_what_it_does_and_its_rate_each_epoch(cl_run):
    _, seen, config = cl_run
    k, epochs = config.method.cl_folds, config.method.cl_epochs
    said = [line for line in seen["lines"] if "cross-fitting" in line]
    starts = [line for line in said if re.search(rf": {k} copies .*, {epochs} epoch", line)]
    epoch_lines = [line for line in said if re.search(r"epoch \d+/\d+ \| \d+/\d+ img .* ETA", line)]
    assert len(starts) == len(seen["fits"]) == 3
    assert len(epoch_lines) == 3 * epochs


def test_cross_fitting_scores_each_sample_with_a_copy_that_never_trained_on_it(cl_run):
    _, seen, config = cl_run
    k = config.method.cl_folds
    # Round 1 (trained alike by both lanes) one set of copies, shared; round 2 one each;
    # round 3, the last, none: no round follows to select for
    assert [len(copies) for copies, _ in seen["fits"]] == [k, k, k]
    assert seen["fit_rounds"] == [1, 2, 2]
    trained_on = {}
    for copies, fitted in seen["fits"]:
        assert len(copies) == k
        d = copies[0][2]
        held = np.concatenate([h for _, h, _ in copies])
        np.testing.assert_array_equal(np.sort(held), np.arange(len(d)))  # a partition of D
        for (indices, held_c, _), params in zip(copies, fitted, strict=True):
            np.testing.assert_array_equal(np.sort(indices), np.sort(np.delete(d, held_c)))
            trained_on[id(params)] = (set(indices.tolist()), set(d[held_c].tolist()))
    for kept, order in seen["orders"]:  # every batch of a copy from its own training set
        assert set(order.tolist()) <= set(kept.tolist())
    scored = [(trained_on[id(p)], idx) for p, idx in seen["scored"] if id(p) in trained_on]
    assert len(scored) == 3 * k
    for (train_set, held), indices in scored:
        assert set(indices.tolist()) == held
        assert not set(indices.tolist()) & train_set


def test_a_confident_learning_run_records_its_selection_and_report(cl_run):
    workdir, _, config = cl_run
    records = sorted(read_records(workdir / "confident_learning"), key=lambda r: r["round"])
    assert [r["round"] for r in records] == [1, 2, 3]
    first, second = records[:2]
    # Round 2 trains on what cleanlab kept: the minority class (score 2) whole, majority
    # photos dropped; the record counts what the selection removed, as rsrl's does.
    assert second["class_counts"]["2"] == first["class_counts"]["2"]
    assert second["train_size"] < first["train_size"]
    report = (workdir / "confident_learning" / "report" / "report.md").read_text()
    assert "cleanlab's label issues" in report
    saved = json.loads((workdir / "confident_learning" / "config.json").read_text())
    assert saved["method"]["selection"] == "confident_learning"


def test_its_control_draws_its_counts_in_compare(cl_run):
    workdir = cl_run[0]
    cl = {r["round"]: r for r in read_records(workdir / "confident_learning")}
    control = read_records(workdir / "random_drop_cl")
    assert [r["round"] for r in control] == [1, 2, 3]
    for r in control[:2]:  # round 2: the same class sizes (from the same round 1), drawn at
        assert r["class_counts"] == cl[r["round"]]["class_counts"]  # random
    assert "random_drop_cl" in (workdir / "compare.md").read_text()


def test_no_cross_fit_after_the_last_round_and_a_raised_resume_selects_as_a_longer_run(
    emb_config, tmp_path
):
    """After a run's last round no round follows: no copies are fitted. A resume that raises
    rsrl.rounds makes that round's selection from its saved network, the one the longer run
    made: the same records."""
    from rsrl_jax.engine import rsrl

    fits = []
    real_fit = cross_fit.fit_copies

    def fit(exp, lanes, params, copies, round_, label):
        fits.append(round_)
        return real_fit(exp, lanes, params, copies, round_, label)

    def run(rounds, workdir, resume="auto"):
        config = emb_config.copy_and_resolve_references()
        config.log.progress = False
        config.rsrl.rounds, config.resume = rounds, resume
        fits.clear()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(cross_fit, "fit_copies", fit)
            rsrl.run(config, str(workdir))
        return list(fits)

    assert run(1, tmp_path / "one") == []
    assert run(2, tmp_path / "raised") == [1]
    assert run(3, tmp_path / "raised", resume="force") == [2]  # round 2's, left undone
    assert run(3, tmp_path / "three") == [1, 2]
    assert read_records(tmp_path / "raised") == read_records(tmp_path / "three")
