"""A tiny run through the CLI: two RSRL rounds on a few dozen synthetic photos."""

import json

import jax
import numpy as np
import pytest
from scipy import stats

from conftest import read_records, tiny_config
from rsrl_jax.data import splits
from rsrl_jax.engine import evaluation, rsrl
from rsrl_jax.method import keep_rules, selection
from rsrl_jax.metrics import aesthetic
from rsrl_jax.run import checkpoints


def test_metrics_jsonl_has_every_field(tiny_run):
    workdir, records, _ = tiny_run
    assert [(r["fold"], r["round"]) for r in records] == [(0, 1), (0, 2)]
    scores = json.loads((workdir / "classes.json").read_text())["class_scores"]
    for r in records:
        assert r["train_size"] == sum(r["class_counts"].values())
        assert list(r["class_counts"]) == [str(s) for s in scores]
        for part in ("train", "val", "test"):
            m = r[part]
            assert 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["macro_f1"] <= 1.0
            assert list(m["per_class"]) == [str(s) for s in scores]
            for c in m["per_class"].values():
                assert set(c) >= {"precision", "recall", "f1", "support"}
        assert sum(c["support"] for c in r["val"]["per_class"].values()) == r["val"]["num_examples"]
    # Round 1 trains on all of D; the D pass evaluates all of D every round.
    assert records[0]["train_size"] == records[0]["train"]["num_examples"]
    assert records[1]["train"]["num_examples"] == records[0]["train_size"]


def test_every_round_checkpoint_restores_and_drives_the_next_selection(tiny_run):
    workdir, records, _ = tiny_run
    config = tiny_config()
    experiment = rsrl.Experiment.build(config, str(workdir))
    data = experiment.data
    (split,) = splits.fold_splits(
        data.labels, 1, config.protocol.val_fraction, config.protocol.test_fraction, config.seed
    )
    mngr = checkpoints.manager(str(workdir), 0, read_only=True)
    assert list(mngr.all_steps()) == [1, 2]
    assert (workdir / "fold_0" / "round_01").is_dir()
    restored = {r: checkpoints.restore_round(mngr, r) for r in (1, 2)}
    x = np.zeros((1, 64, 64, 3), np.float32)
    init = jax.tree.map(  # shapes only: traced, not run
        np.shape, jax.eval_shape(lambda: experiment.model.init(jax.random.key(0), x))["params"]
    )
    for params, meta in restored.values():
        assert jax.tree.map(np.shape, params) == init
        assert meta["record"] == records[meta["record"]["round"] - 1]
    # Round 2's training set is exactly what net_1 keeps from the original D.
    logits = evaluation.logits(experiment, restored[1][0], split.train)
    majority = selection.majority_classes(data.labels[split.train], data.num_classes, 3)
    keep = np.asarray(
        keep_rules.keep_mask(
            keep_rules.likelihoods(logits, "sigmoid"),
            data.labels[split.train],
            majority,
            np.full(3, 0.6, np.float32),
        )
    )
    assert int(keep.sum()) == records[1]["train_size"]
    np.testing.assert_array_equal(keep, np.asarray(restored[1][1]["next_keep"], bool))
    # And the restored round-1 network reproduces the round-1 metrics on validation.
    val_logits = evaluation.logits(experiment, restored[1][0], split.val)
    val = evaluation.report(experiment.data, val_logits, split.val, config.eval.good_threshold)
    assert val["macro_f1"] == pytest.approx(records[0]["val"]["macro_f1"])
    # its aesthetic figures: the softmax-weighted expected score against the true score
    true = np.asarray(data.class_scores)[data.labels[split.val]]
    z = val_logits.astype(np.float64)
    probs = np.exp(z - z.max(1, keepdims=True))
    expected = (probs / probs.sum(1, keepdims=True)) @ np.asarray(data.class_scores)
    recorded = records[0]["val"]
    assert recorded["srcc"] == pytest.approx(stats.spearmanr(expected, true).statistic, abs=1e-5)
    assert recorded["plcc"] == pytest.approx(stats.pearsonr(expected, true).statistic, abs=1e-5)
    assert recorded["mae"] == pytest.approx(np.abs(expected - true).mean(), abs=1e-5)
    assert recorded["binary_accuracy"] == np.mean((true > 5) == (expected > 5))
    for name in aesthetic.FIGURES:
        assert val[name] == pytest.approx(recorded[name])


def _refuse(constant):
    raise AssertionError(f"{constant} in metrics.jsonl: not strict JSON")


def test_every_split_of_every_round_has_the_aesthetic_figures(tiny_run):
    workdir, records, _ = tiny_run
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line, parse_constant=_refuse) for line in lines] == records
    assert [(r["fold"], r["round"]) for r in records] == [(0, 1), (0, 2)]
    for r in records:
        for part in ("train", "train_kept", "val", "test"):
            m = r[part]
            assert list(m)[-2:] == ["per_class", "confusion_matrix"]  # beside the others
            for name in ("srcc", "plcc"):
                assert m[name] is None or -1.0 <= m[name] <= 1.0
            assert 0.0 <= m["mae"] <= m["rmse"]
            assert 0.0 <= m["binary_accuracy"] <= 1.0
    # a network that has trained gives the expected scores some order: defined on D
    assert all(r["train"]["srcc"] is not None for r in records)


def test_summary_chooses_on_validation(tiny_run):
    workdir, records, _ = tiny_run
    summary = json.loads((workdir / "summary.json").read_text())
    (fold,) = summary["folds"]
    best = max(r["val"]["macro_f1"] for r in records)
    assert fold["val_macro_f1"] == best
    assert records[fold["chosen_round"] - 1]["val"]["macro_f1"] == best


def test_progress_off_logs_one_line_per_round(tiny_run):
    _, _, stderr = tiny_run
    assert "epoch" not in stderr and "img/s" not in stderr
    assert stderr.count("fold 0 round 1/2:") == 1 and stderr.count("fold 0 round 2/2:") == 1
    # The run opens finished rounds read-only on purpose: Orbax's warning about it is dropped.
    assert "read only" not in stderr


def test_one_compiled_train_step_whatever_the_round_sizes(tmp_path):
    config = tiny_config({"rsrl.rounds": 3})
    experiment = rsrl.Experiment.build(config, str(tmp_path))
    (split,) = splits.fold_splits(experiment.data.labels, 1, 0.2, 0.2, config.seed)
    records = experiment.run_folds({0: split})
    sizes = {r["train_size"] for r in records}
    assert len(sizes) > 1  # the rounds trained on sets of different sizes
    assert experiment.fold_step(1)._cache_size() == 1
    assert experiment.eval_step._cache_size() == 1


def test_a_synthetic_run_records_what_each_selection_removed(tiny_run):
    workdir, records, _ = tiny_run
    config = tiny_config()
    data = rsrl.Experiment.build(config, str(workdir)).data
    (split,) = splits.fold_splits(
        data.labels, 1, config.protocol.val_fraction, config.protocol.test_fraction, config.seed
    )
    d_labels, d_true = data.labels[split.train], data.true_labels[split.train]
    majority = selection.majority_classes(d_labels, data.num_classes, 3)
    scores = [str(data.class_scores[c]) for c in majority]
    for r in records:
        assert list(r["selection"]) == scores  # the majority classes, largest first
        for c, score in zip(majority, scores, strict=True):
            s = r["selection"][score]
            assert s["kept"] == r["class_counts"][score]
            assert s["kept"] + s["dropped"] == np.sum(d_labels == c)
            wrong = d_true[d_labels == c] != c
            assert s["chance_mislabelled_share"] == pytest.approx(wrong.mean())
    # Round 1 trains on all of D: nothing dropped, the kept share is chance.
    for s in records[0]["selection"].values():
        assert s["dropped"] == 0 and s["dropped_mislabelled_share"] is None
        assert s["kept_mislabelled_share"] == s["chance_mislabelled_share"]
    text = (workdir / "report" / "report.md").read_text()
    assert "selections of round 2 drop" in text or "drop no majority-class photo" in text
    assert (workdir / "report" / "selection_mislabelled.png").is_file()


def test_random_drop_trains_on_rsrl_sizes_drawn_at_random(tmp_path):
    # In this process: the property is the selection's, the CLI's wiring is tiny_run's.
    overrides = {"method.selection": "'random_drop'", "rsrl.drop_quantile": 0.5}
    rsrl.run(tiny_config({**overrides, "log.progress": False}), str(tmp_path))
    records = read_records(tmp_path)
    assert [r["round"] for r in records] == [1, 2]
    config = tiny_config(overrides)
    experiment = rsrl.Experiment.build(config, str(tmp_path))
    data = experiment.data
    (split,) = splits.fold_splits(
        data.labels, 1, config.protocol.val_fraction, config.protocol.test_fraction, config.seed
    )
    d_labels = data.labels[split.train]
    majority = selection.majority_classes(d_labels, data.num_classes, 3)
    params, meta = checkpoints.restore_round(
        checkpoints.manager(str(tmp_path), 0, read_only=True), 1
    )
    logits = evaluation.logits(experiment, params, split.train)
    rule = keep_rules.rsrl_keep(config.rsrl, logits, d_labels, majority, np.full(3, 0.6))
    keep = np.asarray(meta["next_keep"], bool)
    for c in range(data.num_classes):  # RSRL's sizes per class, minority classes whole
        assert keep[d_labels == c].sum() == rule[d_labels == c].sum()
    assert not np.array_equal(keep, rule)
    rng = keep_rules.random_drop_rng(config.seed, 0, 2)
    np.testing.assert_array_equal(keep, keep_rules.random_keep(rule, d_labels, majority, rng))
    assert records[1]["class_counts"] == evaluation.score_counts(d_labels[keep], data.class_scores)
