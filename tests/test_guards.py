"""Nonsense is refused before any work, naming the field; selection edge cases are handled."""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import tiny_config, with_xla_flags
from rsrl_jax.config import result_changing_fields, validate
from rsrl_jax.data import splits
from rsrl_jax.engine import evaluation, rsrl
from rsrl_jax.method import keep_rules, selection


@pytest.mark.parametrize(
    "field, value, message",
    [
        (
            "rsrl.thresholds",
            (0.0, 0.99, 0.99),
            "config.rsrl.thresholds=(0.0, 0.99, 0.99): must be numbers K in (0, 1]",
        ),
        (
            "rsrl.thresholds",
            (0.99, 1.5, 0.99),
            "config.rsrl.thresholds=(0.99, 1.5, 0.99): must be numbers K in",
        ),
        (
            "rsrl.thresholds",
            (0.99, 0.99),
            "config.rsrl.thresholds=(0.99, 0.99): has 2 value(s), but rsrl.num_majority=3",
        ),
        ("rsrl.rounds", 0, "config.rsrl.rounds=0: must be >= 1"),
        ("rsrl.likelihood", "tanh", "config.rsrl.likelihood='tanh': must be one of"),
        ("rsrl.min_keep_per_class", -1, "config.rsrl.min_keep_per_class=-1"),
        ("rsrl.drop_quantile", 1.0, "config.rsrl.drop_quantile=1.0: must be in [0, 1)"),
        ("rsrl.drop_quantile", -0.1, "config.rsrl.drop_quantile=-0.1: must be in [0, 1)"),
        ("data.name", "imagenet", "config.data.name='imagenet': must be one of"),
        ("data.image_size", 32, "config.data.image_size=32"),
        ("train.batch_size", 0, "config.train.batch_size=0"),
        ("resume", "maybe", "config.resume='maybe'"),
        ("model.pretrained", "/no/such/weights", "config.model.pretrained='/no/such/weights'"),
    ],
)
def test_bad_values_name_their_field(field, value, message):
    config = tiny_config({"model.width": 1.0, "model.fc_dim": 4096})  # pretrained needs these
    config.update_from_flattened_dict({field: value})
    with pytest.raises(ValueError) as e:
        validate(config)
    assert message in str(e.value)


def test_missing_data_folder_is_named():
    config = tiny_config()
    config.data.name, config.data.dir = "folder", "/no/such/photos"
    with pytest.raises(ValueError, match=r"config.data.dir='/no/such/photos': no such folder"):
        validate(config)


def test_num_majority_must_leave_a_minority(tmp_path):
    config = tiny_config({"rsrl.num_majority": 6, "rsrl.thresholds": "(0.9,) * 6"})
    validate(config)  # fine on its own: the data has 6 classes, which only the data can tell
    with pytest.raises(ValueError, match=r"config.rsrl.num_majority=6: must be below .* \(6"):
        rsrl.run(config, str(tmp_path / "run"))
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_global_batch_must_divide_over_the_devices():
    code = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from conftest import tiny_config\n"
        "from rsrl_jax.config import validate\n"
        "c = tiny_config({'train.batch_size': 6})\n"
        "validate(c)\n"
    )
    env = {**os.environ, "XLA_FLAGS": with_xla_flags("--xla_force_host_platform_device_count=4")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        timeout=120,
    )
    assert result.returncode != 0
    assert "config.train.batch_size=6: the global batch must be divisible by the 4 devices" in (
        result.stderr
    )


def test_only_logging_fields_may_change_on_resume():
    a = tiny_config().to_dict()
    b = tiny_config({"log.progress": False, "checkpoint.every_steps": 7}).to_dict()
    assert result_changing_fields(a, b) == []
    c = tiny_config({"rsrl.thresholds": "(0.5,0.6,0.6)", "seed": 3}).to_dict()
    assert result_changing_fields(a, c) == [
        "rsrl.thresholds: [0.6, 0.6, 0.6] -> [0.5, 0.6, 0.6]",
        "seed: 0 -> 3",
    ]
    d = tiny_config({"rsrl.drop_quantile": 0.3}).to_dict()
    assert result_changing_fields(a, d) == ["rsrl.drop_quantile: 0.0 -> 0.3"]
    # A run recorded before a field existed ran with its default: resumable as it is.
    del a["rsrl"]["drop_quantile"]
    assert result_changing_fields(a, b) == []
    assert result_changing_fields(a, d) == ["rsrl.drop_quantile: 0.0 -> 0.3"]


def test_keep_at_least_tops_up_the_most_likely_of_each_class():
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    own = np.array([0.1, 0.9, 0.5, 0.3, 0.2, 0.8, 0.0])
    keep = np.array([False, False, False, False, True, False, True])
    topped = keep_rules.keep_at_least(keep, own, labels, classes=[0, 1], min_keep=2)
    assert topped.tolist() == [False, True, True, False, True, True, True]
    assert keep_rules.keep_at_least(keep, own, labels, [0, 1], 0).tolist() == keep.tolist()
    # A class smaller than min_keep keeps all it has.
    assert keep_rules.keep_at_least(keep, own, labels, [1], 5)[4:6].tolist() == [True, True]


@pytest.mark.parametrize("min_keep", [0, 3])
def test_a_round_that_drops_a_whole_class_is_logged_and_follows_the_config(min_keep, caplog):
    config = tiny_config({"rsrl.min_keep_per_class": min_keep})
    experiment = rsrl.Experiment.build(config, "unused")
    data = experiment.data
    (split,) = splits.fold_splits(data.labels, 1, 0.2, 0.2, config.seed)
    d_labels = data.labels[split.train]
    majority = selection.majority_classes(d_labels, data.num_classes, 3)
    logits = np.full((len(split.train), data.num_classes), -10.0, np.float32)  # unsure of all
    with caplog.at_level("WARNING"):
        keep, warnings = selection.next_training_set(
            config,
            logits,
            d_labels,
            data.num_classes,
            data.class_scores,
            majority,
            np.full(3, 0.99, np.float32),
            0,
            2,
        )
        evaluation.log_selection(config, 0, 2, keep, warnings)
    for c in majority:
        n = int(np.sum(d_labels == c))
        assert int(keep[d_labels == c].sum()) == min(min_keep, n)
        assert f"{data.class_scores[c]}: {min(min_keep, n)}/{n}" in caplog.text
    minority = ~np.isin(d_labels, majority)
    assert keep[minority].all()
    (line,) = [r.getMessage() for r in caplog.records if "round 2" in r.getMessage()]
    assert line == warnings[0]
    what = "no photo" if min_keep == 0 else "fewer than one batch (16)"
    assert line.startswith(f"fold 0 round 2: the selection keeps {what} of scores ")
    assert "To keep more: rsrl.min_keep_per_class=N" in line and "rsrl.drop_quantile=q" in line
