"""`python -m benchmarks --study`: one study as lanes, as a loop of runs, as a PyTorch
loop, and its FLOP bound."""

import json
import subprocess
import sys

import numpy as np
import pytest


def test_study_benchmark_times_every_side_and_the_pytorch_loop_runs_the_same_study(tmp_path):
    # A tiny study four ways: 200 vectors, 2 seeds x 2 methods, 2 folds, 2 rounds.
    out = tmp_path / "study.json"
    cmd = [sys.executable, "-m", "benchmarks", "--study", "--study_seeds=2"]
    cmd += ["--study_methods=plain,rsrl", "--study_folds=2", "--study_rounds=2"]
    cmd += ["--study_examples=200", "--study_dim=16", "--nostudy_warmup", f"--json_out={out}"]
    cmd += ["--study_overrides=train.first_round_epochs=2,train.epochs_per_round=1"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())

    for row in (
        "(a) our study on lanes",
        "(b) our runs one at a time",
        "(c) PyTorch loop",
        "(d) FLOP bound",
        "ratios: (a)/(d)",
        "(c)/(a)",
        "(b)/(a)",
        "yardstick: one 2-fold run",
    ):
        assert row in result.stdout, row  # fmt: skip
    s, sides = figures["summary"], figures["sides"]
    assert s["c_over_a"] == sides["c"]["wall_s"] / sides["a"]["wall_s"]
    assert s["a_over_d"] == sides["a"]["wall_s"] / figures["flops"]["bound_s"]
    assert s["a_over_single"] == sides["a"]["wall_s"] / sides["single"]["wall_s"]
    for key in ("a", "b", "c"):
        assert abs(sum(sides[key]["split"].values()) - sides[key]["wall_s"]) < 1e-6, key
    assert sides["a"]["split"]["training_s"] > 0 and sides["a"]["split"]["compile_s"] > 0

    # The FLOP count by hand: a 16 -> 512 -> C head, 2 + 1 epochs of |D| samples trained (3x
    # forward), and each of the 2 rounds passes over D, val and test; per method.
    classes, sizes = figures["data"]["classes"], figures["data"]["split_sizes"]
    assert len(sizes) == 4  # 2 seeds x 2 folds
    forward = 2 * (16 * 512 + 512 * classes)
    by_hand = sum(3 * forward * 3 * d + forward * 2 * (d + v + t) for d, v, t in sizes) * 2
    assert figures["flops"]["total"] == by_hand
    assert figures["flops"]["sgemm"]["gflops"] > 0

    # (c) runs each of our runs: the same folds (round 1 trains on all of D), rounds and steps.
    ours = sides["b"]["side"]["runs"]
    theirs = sides["c"]["runs"]
    assert len(ours) == len(theirs) == 4
    for run in theirs:
        (key,) = [k for k in ours if k.endswith(f"seed_{run['seed']}/{run['method']}")]
        mine = ours[key]["rounds"]
        assert [(r["fold"], r["round"], r["steps"]) for r in run["records"]] == [
            (r["fold"], r["round"], r["steps"]) for r in mine
        ]
        firsts = [r["train_size"] for r in run["records"] if r["round"] == 1]
        assert firsts == [sizes[2 * run["seed"] + f][0] for f in range(2)]
        if run["method"] == "plain":
            assert all(
                r["train_size"] == r2["train_size"]
                for r, r2 in zip(run["records"], mine, strict=True)
            )


def test_the_pytorch_loops_selection_keeps_what_ours_keeps():
    # On the same likelihoods, the PyTorch loop's RSRL rule keeps the same samples as ours,
    # and its random_drop the same number of each class.

    from benchmarks import torch_loop
    from rsrl_jax.method import keep_rules, selection

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, 500)
    likelihood = rng.uniform(0.9, 1.0, (500, 6)).astype(np.float32)
    majority = selection.majority_classes(labels, 6, 3)
    assert list(torch_loop.majority_classes(labels, 6, 3)) == list(majority)
    thresholds = (0.99, 0.95, 0.97)
    ours = np.asarray(keep_rules.keep_mask(likelihood, labels, majority, thresholds))
    theirs = torch_loop.keep_mask(likelihood, labels, majority, thresholds)
    assert (ours == theirs).all() and 0 < ours.sum() < 500
    mine = keep_rules.random_keep(ours, labels, majority, np.random.default_rng(1))
    drawn = torch_loop.random_keep(theirs, labels, majority, np.random.default_rng(2))
    assert (np.bincount(labels[mine], minlength=6) == np.bincount(labels[drawn], minlength=6)).all()
    assert (drawn != mine).any()  # drawn on their own, the same counts


def test_study_flops_by_hand():
    from benchmarks import study_bench
    from conftest import tiny_config

    config = tiny_config({"rsrl.rounds": 3, "train.first_round_epochs": 4})
    config.train.epochs_per_round = 2
    flops = study_bench.study_flops([10, 20, 5], [(100, 10, 30), (90, 12, 28)], config)
    forward = 2 * (10 * 20 + 20 * 5)
    assert flops["forward_per_sample"] == forward and flops["epochs_per_fold"] == 8
    assert flops["training"] == 3 * forward * 8 * (100 + 90)
    assert flops["evaluation"] == forward * 3 * (140 + 130)
    assert flops["total"] == flops["training"] + flops["evaluation"]


def test_the_lanes_split_counts_a_groups_training_once():
    from benchmarks import study_bench

    # two runs' lanes of one group of 4 lanes: each lane records the group's 8 s whole
    timings = [{"train_s": 8.0, "eval_s": 0.5, "checkpoint_s": 0.25, "lanes": 4}] * 2
    run = {"timings": timings, "last_round_at": 20.0, "last_file_at": 21.0}
    side = {
        "compiles": {"jit(train_step)": {"trace_s": 0.5, "lower_s": 0.25, "compile_s": 1.25}},
        "runs": {"a": run, "b": run},
        "stamps": {"study_start": 2.0, "study_end": 22.0},
    }
    split = study_bench.split_study({"start": 0.0, "wall_s": 30.0}, side)
    assert split["imports_s"] == 2.0 and split["compile_s"] == 2.0
    assert split["training_s"] == 8.0 * 4 / 4 - 2.0  # 4 lane records of 8 s: 8 s, less compiles
    assert split["evaluation_s"] == 2.0 and split["checkpoints_s"] == 1.0
    assert split["reporting_s"] == 22.0 - 20.0  # the last round to the study's end
    assert sum(split.values()) == 30.0 and split["other_s"] == 30.0 - 15.0


def test_a_loop_of_runs_split_ends_each_run_at_its_last_round_not_its_summary():
    from benchmarks import study_bench

    # Two runs one after the other (lanes=1): the first's last round at 40 s, the second's
    # at 90 s; both summaries (each run's last file) written at the study's end, 95 s.
    def run(last_round_at):
        timings = [{"train_s": 30.0, "eval_s": 2.0, "checkpoint_s": 3.0, "lanes": 1}]
        return {"timings": timings, "last_round_at": last_round_at, "last_file_at": 95.0}

    side = {
        "compiles": {"jit(train_step)": {"trace_s": 1.0, "lower_s": 1.0, "compile_s": 3.0}},
        "runs": {"seed_0": run(40.0), "seed_1": run(90.0)},
        "stamps": {"study_start": 4.0, "study_end": 96.0},
    }
    split = study_bench.split_study({"start": 0.0, "wall_s": 100.0}, side)
    assert split["reporting_s"] == 96.0 - 90.0  # not the 55 s the first run waited
    assert split["training_s"] == 60.0 - 5.0 and split["checkpoints_s"] == 6.0
    assert split["other_s"] == 100.0 - (4.0 + 5.0 + 55.0 + 4.0 + 6.0 + 6.0)
    assert all(v >= 0 for v in split.values()), split
    assert sum(split.values()) == 100.0


def test_the_speed_table_is_rendered_from_the_benchmarks_figures():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "tools" / "study_speed_table.py"
    spec = importlib.util.spec_from_file_location("study_speed_table", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    parts = ("imports_s", "compile_s", "training_s", "evaluation_s", "checkpoints_s")
    split = {**dict.fromkeys(parts, 1.0), "reporting_s": 0.0, "other_s": 5.0}
    results = {
        "settings": {
            "data": "embeddings",
            "methods": ["plain", "rsrl"],
            "seeds": 2,
            "folds": 5,
            "rounds": 6,
            "examples": 3000,
            "dim": 128,
        },  # fmt: skip
        "machine": {"cpu_count": 2, "load_1min_start": 0.5},
        "sides": {"a": {"wall_s": 10.0, "split": split}, "b": {"wall_s": 20.0, "split": split}},
        "summary": {
            "wall_s": {"a": 10.0, "b": 20.0, "c": 16.0, "d": 4.0},
            "single_run_s": 5.0,
            "a_over_d": 2.5,
            "c_over_a": 1.6,
            "b_over_a": 2.0,
            "a_over_single": 2.0,
        },
    }
    text = tool.table(results)
    assert "| (a) our study on lanes | 10.0 |" in text
    assert "| (d) FLOP bound at sgemm rate | 4.0 |" in text
    assert "| one 5-fold run (yardstick) | 5.0 |" in text
    assert "| (c) / (a) | 1.60x |" in text and "| (a) / one run | 2.00x |" in text
    assert (
        "| training | 1.0 (10%) | 1.0 (5%) |" in text
        and "| other | 5.0 (50%) | 5.0 (25%) |" in text
    )
    assert "CPU s" not in text  # figures of a benchmark that did not count them

    # With each process's CPU seconds and our sides' compiles (of them, cache hits)
    compiles = {"train_step": {"compiles": 2}, "init": {"compiles": 3}}
    for key, cpu in (("a", 7.5), ("b", 12.0)):
        results["sides"][key] |= {"cpu_s": cpu, "side": {"compiles": compiles, "cache_hits": 4}}
    results["sides"]["single"] = {"wall_s": 5.0, "cpu_s": 4.5}
    text = tool.table(results)
    assert "| (a) our study on lanes | 7.5 | 5 (4) |" in text
    assert "| (b) our runs one at a time | 12.0 | 5 (4) |" in text
    assert "| one 5-fold run | 4.5 | - |" in text


DEVICE_REPORT = """
import runpy, sys
sys.argv = ["benchmark", *sys.argv[1:]]
runpy.run_module("benchmarks", run_name="__main__")
"""


def test_device_report_of_the_study_on_two_cpu_devices_splits_lanes_or_batches(tmp_path):
    # On 2 forced CPU devices: 2 lanes split over the devices (one lane each, whole
    # batches), 3 lanes cannot be: each batch is split along `data` and the lanes replicated.
    from conftest import run_on_cpu_devices

    out = tmp_path / "lanes.json"
    args = ["--device_report", "--study", "--study_report_lanes=2,3", "--peak_tflops=1"]
    result = run_on_cpu_devices(2, DEVICE_REPORT, *args, f"--json_out={out}")
    figures = json.loads(out.read_text())

    assert "no accelerator" in result.stdout and "lanes x examples/s" in result.stdout
    assert figures["device_count"] == 2 and not figures["accelerator"]
    two, three = figures["rows"]
    assert two["mesh"] == {"lane": 2, "data": 1} and three["mesh"] == {"lane": 1, "data": 2}
    assert two["batch_per_device"] == [1, 64] and three["batch_per_device"] == [3, 32]
    assert two["lanes_of_params_per_device"] == 1 and three["lanes_of_params_per_device"] == 3
    # XLA's FLOPs of one device's program: 3 x 32 examples against 1 x 64 (1.5x), and 3
    # lanes' parameters updated against 1 (3x).
    assert 1.5 < three["flops_per_device_step"] / two["flops_per_device_step"] < 3
    for row in (two, three):
        assert row["examples_per_s"] == pytest.approx(row["lanes"] * 64e3 / row["step_ms"])
        assert row["utilisation"] == pytest.approx(row["tflops"] / 1.0)
