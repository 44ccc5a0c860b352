"""The method config, one compiled step per run whatever the loss, and `rsrl_jax.compare`."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import TINY_OVERRIDES, read_records, tiny_config
from rsrl_jax.config import validate
from rsrl_jax.data import splits
from rsrl_jax.engine import rsrl
from rsrl_jax.experiments import compare
from rsrl_jax.metrics import aesthetic, fold_stats


@pytest.mark.parametrize(
    "field, value, message",
    [
        (
            "method.selection",
            "smote",
            "must be one of ('rsrl', 'none', 'hardness', 'random_drop', 'confident_learning')",
        ),
        ("method.loss", "hinge", "must be one of ('cross_entropy', 'weighted_cross_entropy'"),
        ("method.class_weights", "sqrt", "must be one of ('inverse_frequency'"),
        ("method.effective_number_beta", 1.0, "must be in [0, 1)"),
        ("method.focal_gamma", -1.0, "must be >= 0"),
        ("method.logit_adjustment_tau", -0.5, "must be >= 0"),
        ("method.sampling", "oversample", "must be one of ('uniform', 'class_balanced')"),
        ("method.hardness_target", -1, "must be >= 0"),
        ("train.epoch_samples", "half", "must be one of ('kept', 'all')"),
    ],
)
def test_bad_method_fields_are_named(field, value, message):
    config = tiny_config()
    config.update_from_flattened_dict({field: value})
    with pytest.raises(ValueError) as raised:
        validate(config)
    assert str(raised.value).startswith(f"config.{field}={value!r}: ")
    assert message in str(raised.value)


def test_method_names():
    assert compare.method_fields("rsrl+focal") == {
        "method.selection": "rsrl",
        "method.loss": "focal",
        "method.sampling": "uniform",
        "method.random_drop_rule": "rsrl",
    }
    # random_drop draws RSRL's counts unless named random_drop_cl (confident learning's)
    assert compare.method_fields("random_drop_cl")["method.random_drop_rule"] == (
        "confident_learning"
    )
    assert compare.method_fields("plain")["method.selection"] == "none"
    with pytest.raises(ValueError, match="sets method.selection twice"):
        compare.method_fields("rsrl+hardness")
    # The control beside RSRL and plain in the default comparison; a selection of its own.
    assert {"plain", "rsrl", "random_drop"} <= set(compare.DEFAULT_METHODS)
    assert compare.method_fields("random_drop+focal")["method.selection"] == "random_drop"
    with pytest.raises(ValueError, match="sets method.selection twice"):
        compare.method_fields("rsrl+random_drop")
    with pytest.raises(ValueError, match="unknown part 'smote'"):
        compare.method_fields("rsrl+smote")
    config = compare.method_config(tiny_config(), "hardness+effective_number", equal_steps=True)
    assert config.method.selection == "hardness" and config.method.loss == "weighted_cross_entropy"
    assert config.method.class_weights == "effective_number"
    assert config.train.epoch_samples == "all"
    validate(config)


def test_group_averages_and_majority_scores_by_hand():
    def cls(p, r, support):
        return {"precision": p, "recall": r, "f1": 0.0, "support": support, "present": True}

    part = {
        "per_class": {
            "2": cls(0.5, 1.0, 2),
            "3": cls(0.9, 0.8, 30),
            "4": cls(0.7, 0.6, 40),
            "8": cls(0.0, 0.0, 0),  # no test sample: left out, as the paper leaves out score 9
            "6": cls(0.3, 0.2, 5),
        }
    }
    record = {
        "train": {
            "per_class": {
                k: {"support": n} for k, n in [("2", 5), ("3", 9), ("4", 9), ("8", 1), ("6", 4)]
            }
        }
    }
    majority = fold_stats.majority_scores(record, 2)
    assert majority == ["3", "4"]  # ties go to the lower class index
    got = fold_stats.group_averages(part, majority)
    assert got == pytest.approx(
        {
            "majority_precision": 0.8,
            "majority_recall": 0.7,
            "minority_precision": 0.4,
            "minority_recall": 0.6,
        }
    )


def test_one_compiled_step_over_folds_with_other_class_weights(tmp_path):
    """Class weights enter the step as arrays: a second fold's D reuses the compiled step."""
    config = tiny_config(
        {"method.loss": "'weighted_cross_entropy'", "rsrl.rounds": 1, "train.first_round_epochs": 1}
    )
    experiment = rsrl.Experiment.build(config, str(tmp_path))
    fold_splits = splits.fold_splits(experiment.data.labels, 2, 0.2, 0.2, config.seed)
    counts = [np.bincount(experiment.data.labels[s.train]) for s in fold_splits]
    assert not np.array_equal(counts[0], counts[1])  # other counts, so other weights
    for fold, split in enumerate(fold_splits):
        experiment.run_folds({fold: split})
    assert experiment.fold_step(1)._cache_size() == 1


METHODS = ("balanced_sampling+emd", "hardness+logit_adjusted")


def run_compare(workdir, methods: str, check=True):
    """`python -m rsrl_jax.compare` on the tiny config; returns the finished process."""
    cmd = [sys.executable, "-m", "rsrl_jax.compare", "--config=configs/demo.py"]
    cmd += [f"--workdir={workdir}", f"--methods={methods}", "--config.log.progress=False"]
    cmd += [f"--config.{k}={v}" for k, v in TINY_OVERRIDES.items()]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if check:
        assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def tiny_compare(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("compare")
    return workdir, run_compare(workdir, ",".join(METHODS))


def test_compare_writes_the_table_json_and_plot(tiny_compare):
    workdir, result = tiny_compare
    assert result.stdout.strip().endswith("compare.md")
    with Image.open(workdir / "compare.png") as png:
        assert png.size[0] > 500 and png.size[1] > 500
    out = json.loads((workdir / "compare.json").read_text())
    assert list(out["methods"]) == list(METHODS)
    table = (workdir / "compare.md").read_text()
    for method in METHODS:
        records = read_records(workdir / method)
        config = json.loads((workdir / method / "config.json").read_text())
        assert config["train"]["epoch_samples"] == "all"
        summary = out["methods"][method]
        (fold,) = summary["folds"]
        honest = fold_stats.choose_round(records, "val")
        on_test = fold_stats.choose_round(records, "test")
        assert fold["honest"]["round"] == honest["round"]
        assert fold["honest"]["macro_f1"] == honest["test"]["macro_f1"]
        assert (
            fold["on_test"]["macro_f1"] == on_test["test"]["macro_f1"] >= fold["honest"]["macro_f1"]
        )
        assert fold["honest"]["balanced_accuracy"] == honest["test"]["balanced_accuracy"]
        row = next(line for line in table.splitlines() if line.startswith(f"| {method} |"))
        assert f"{honest['test']['macro_f1']:.3f} ({on_test['test']['macro_f1']:.3f})" in row
    # the equal budget: every round of every method is as long as epochs x a pass over D
    d_size = read_records(workdir / METHODS[0])[0]["train"]["num_examples"]
    epochs = TINY_OVERRIDES["train.first_round_epochs"] + TINY_OVERRIDES["train.epochs_per_round"]
    steps = epochs * math.ceil(d_size / TINY_OVERRIDES["train.batch_size"])
    assert [out["methods"][m]["steps"]["mean"] for m in METHODS] == [steps, steps]


def test_compare_reports_the_aesthetic_figures(tiny_compare):
    workdir, _ = tiny_compare
    out = json.loads((workdir / "compare.json").read_text())
    table = (workdir / "compare.md").read_text().splitlines()
    start = table.index("| method | SRCC | PLCC | MAE | RMSE | binary acc. |")
    assert "binary accuracy: good above 5." in table[start - 2]
    for method in METHODS:
        records = read_records(workdir / method)
        honest = fold_stats.choose_round(records, "val")["test"]
        on_test = fold_stats.choose_round(records, "test")["test"]
        summary = out["methods"][method]
        (fold,) = summary["folds"]
        for name in aesthetic.FIGURES:
            assert fold["honest"][name] == honest[name]
            assert fold["on_test"][name] == on_test[name]
            stat = summary["honest"][name]
            assert (stat["mean"], stat["n"]) == (
                (None, 0) if honest[name] is None else (honest[name], 1)
            )
        row = next(line for line in table[start:] if line.startswith(f"| {method} |"))
        assert f"| {honest['mae']:.3f} ({on_test['mae']:.3f}) |" in row
        assert f"| {honest['binary_accuracy']:.3f} ({on_test['binary_accuracy']:.3f}) |" in row


def test_compare_methods_train_as_configured(tiny_compare):
    workdir, _ = tiny_compare
    balanced = read_records(workdir / "balanced_sampling+emd")
    assert all(r["train_size"] == r["train"]["num_examples"] for r in balanced)  # all of D
    config = json.loads((workdir / "balanced_sampling+emd" / "config.json").read_text())
    assert config["method"]["loss"] == "emd"
    # NIMA's EMD of a distribution is at most 1 (each CDF difference is); cross-entropy of a
    # fresh network over the scores is about log(classes) > 1.
    assert all(0 < r["train_loss"] <= 1 for r in balanced)
    assert hardness_loss(workdir) > 1
    hardness = read_records(workdir / "hardness+logit_adjusted")
    # round 2 trains on D reduced by the hardness rule: every class at most the smallest's size
    counts = [n for n in hardness[1]["class_counts"].values() if n]
    d_counts = [c["support"] for c in hardness[0]["train"]["per_class"].values() if c["support"]]
    assert max(counts) < max(d_counts) and hardness[1]["train_size"] < hardness[0]["train_size"]
    assert (
        hardness[1]["steps"] == hardness[0]["steps"] // TINY_OVERRIDES["train.first_round_epochs"]
    )


def hardness_loss(workdir):
    return read_records(workdir / "hardness+logit_adjusted")[0]["train_loss"]


def test_compare_refuses_a_bad_method_before_any_work(tmp_path):
    result = run_compare(tmp_path, "rsrl+smote", check=False)
    assert result.returncode != 0 and "unknown part 'smote'" in result.stderr
    assert not any(tmp_path.iterdir())
