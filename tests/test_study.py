"""`rsrl_jax.study`: compare's methods over seeds and rater noise, paired intervals to plain."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from conftest import TINY_OVERRIDES, read_records
from rsrl_jax import errors, workdir_files
from rsrl_jax.analysis import selection_truth

# rsrl+focal: round 1 differs from plain (the loss), later rounds select
from rsrl_jax.experiments import study
from rsrl_jax.metrics import fold_stats

SELECTING = "rsrl+focal"
METHODS = ("plain", SELECTING)
SEEDS = (0, 1)
NOISE = (0.1, 1.0)
FOLDS = 2  # --folds: the demo's config has one split


def study_command(
    workdir, methods="plain,rsrl+focal", seeds="0,1", noise="0.1,1.0", folds=str(FOLDS)
):
    cmd = [sys.executable, "-m", "rsrl_jax.study", "--config=configs/demo.py"]
    cmd += [f"--workdir={workdir}", f"--methods={methods}", f"--seeds={seeds}"]
    cmd += [f"--label_noise={noise}", f"--folds={folds}", "--config.log.progress=False"]
    return cmd + [f"--config.{k}={v}" for k, v in TINY_OVERRIDES.items()]


def run_study(workdir, **kwargs):
    result = subprocess.run(study_command(workdir, **kwargs), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("study")
    return workdir, run_study(workdir)


def test_paired_interval_matches_scipy():
    a = np.array([0.61, 0.55, 0.70, 0.48, 0.66])
    b = np.array([0.58, 0.57, 0.62, 0.41, 0.60])
    got = study.paired_interval(list(a - b))
    want = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert got["mean"] == pytest.approx(float(np.mean(a - b)))
    assert got["std"] == pytest.approx(float(np.std(a - b, ddof=1)))
    assert (got["low"], got["high"]) == pytest.approx((want.low, want.high))
    assert got["n"] == 5
    # one pair: a mean, no interval; None entries (a group without test photos) left out
    assert study.paired_interval([0.2, None]) == {
        "mean": 0.2,
        "std": None,
        "n": 1,
        "low": None,
        "high": None,
    }


@pytest.mark.parametrize(
    "grid, message",
    [
        ((["plain", "smote"], [0], [0.1]), "--methods: unknown part 'smote'"),
        ((["plain"], [0, -1], [0.1]), "--seeds: -1 is not an integer >= 0"),
        ((["plain"], [0], [0.1, -0.5]), "--label_noise: -0.5 is not a number >= 0"),
        ((["plain"], [0], [math.nan]), "--label_noise: nan is not a number >= 0"),
        (([], [0], [0.1]), "--methods: name at least one method"),
    ],
)
def test_bad_grid_is_named(grid, message):
    with pytest.raises(errors.ConfigError) as raised:
        study.check_grid(*grid)
    assert str(raised.value).startswith(message)


def test_noise_levels_refused_on_data_without_a_rater(tmp_path):
    # Rater noise is drawn only for synthetic photos: a folder's scores are what they are,
    # so several levels would be the same runs under different names.
    from rsrl_jax.config import base_config

    config = base_config()
    config.data.name = "folder"
    with pytest.raises(errors.ConfigError, match="--label_noise: rater noise is drawn only"):
        study.study(config, str(tmp_path / "s"), ["plain"], [0], [0.1, 0.5])
    assert not (tmp_path / "s").exists()
    # By default: one level there (the config's, unused), the three on synthetic photos.
    assert study.noise_levels(config, None) == (config.data.label_noise,)
    assert study.noise_levels(config, [config.data.label_noise]) == (config.data.label_noise,)
    with pytest.raises(errors.ConfigError, match="leave the flag out"):
        study.noise_levels(config, [0.3])  # a level the runs would not use
    config.data.name = "synthetic"
    assert study.noise_levels(config, None) == study.DEFAULT_NOISE == (0.1, 0.5, 1.0)


def test_levels_that_would_share_a_folder_are_refused():
    with pytest.raises(errors.ConfigError, match="would share the folder noise_0.1"):
        study.check_grid(["plain"], [0], [0.1000001, 0.1000002])


def test_a_bad_config_value_stops_the_study_before_any_run(tmp_path):
    from rsrl_jax.config import base_config

    config = base_config()
    config.data.image_size = 32  # too small for AlexNet
    with pytest.raises(errors.ConfigError, match="image_size"):
        study.study(config, str(tmp_path / "s"), ["plain"], [0], [0.1])
    assert not (tmp_path / "s").exists()


def test_power_of_a_difference_by_hand():
    # rsrl - plain over 6 paired units, all below 0: the interval excludes 0
    d = [-0.031, -0.012, -0.027, -0.020, -0.008, -0.035]
    interval = study.paired_interval(d)
    got = study.power(interval, "rsrl", per_seed=3)
    sd = np.std(d, ddof=1)
    half = stats.t.ppf(0.975, 5) * sd / math.sqrt(6)
    low, high = stats.t.interval(0.95, 5, loc=np.mean(d), scale=sd / math.sqrt(6))
    assert got["half_width"] == pytest.approx(half) == pytest.approx((high - low) / 2)
    assert got["excludes_zero"] is True
    assert got["words"] == "excludes 0: rsrl is lower than plain"
    # the fewest units whose half-width at this sd is <= 0.01, by scipy directly
    need = got["units_needed"]
    assert stats.t.ppf(0.975, need - 1) * sd / math.sqrt(need) <= 0.01
    assert stats.t.ppf(0.975, need - 2) * sd / math.sqrt(need - 1) > 0.01
    assert got["seeds_needed"] == math.ceil(need / 3)
    # above 0, and across it
    up = study.power(study.paired_interval([-x for x in d]), "focal")
    assert up["words"] == "excludes 0: focal is higher than plain"
    across = study.power(study.paired_interval([0.02, -0.01, 0.005, -0.03]), "rsrl")
    assert across["excludes_zero"] is False
    assert across["words"] == "includes 0: no detectable difference"
    assert across["seeds_needed"] is None  # no units per seed given
    # too few pairs for an interval; every unit the same difference (sd 0)
    assert study.power(study.paired_interval([0.1]), "rsrl")["words"] == (
        "one paired unit: no interval"
    )
    assert study.power(study.paired_interval([]), "rsrl")["units_needed"] is None
    flat = study.power(study.paired_interval([0.0, 0.0, 0.0]), "rsrl")
    assert (flat["half_width"], flat["excludes_zero"], flat["units_needed"]) == (0.0, False, 2)
    # a large sd: the normal approximation's start is below the answer, which t then reaches
    assert study.units_needed(0.05) == next(
        n for n in range(2, 10_000) if stats.t.ppf(0.975, n - 1) * 0.05 / math.sqrt(n) <= 0.01
    )


def test_power_in_study_md_and_json_from_hand_made_units():
    figures = study.FIGURES + study.AESTHETIC

    def cell(macro_f1):
        us = [
            {"seed": s, "fold": f, **dict.fromkeys(figures, 0.5), "macro_f1": m}
            for (s, f), m in zip([(0, 0), (0, 1), (1, 0), (1, 1)], macro_f1, strict=True)
        ]
        return {"units": us}

    plain = cell([0.40, 0.42, 0.38, 0.41])
    rsrl = cell([0.37, 0.40, 0.33, 0.37])  # lower on every unit
    diff = study.against_reference(rsrl, plain, "rsrl")
    d = np.array([0.37, 0.40, 0.33, 0.37]) - np.array([0.40, 0.42, 0.38, 0.41])
    half = stats.t.ppf(0.975, 3) * np.std(d, ddof=1) / 2
    assert diff["macro_f1"]["half_width"] == pytest.approx(half)
    assert diff["macro_f1"]["n"] == 4 and diff["macro_f1"]["seeds_needed"] is not None
    assert diff["srcc"]["words"] == "includes 0: no detectable difference"  # equal: sd 0
    lines = study.power_lines({"plain": {"diff": None}, "rsrl": {"diff": diff}})
    (line,) = [x for x in lines if x.startswith("- **rsrl − plain**")]
    mean, low, high = d.mean(), d.mean() - half, d.mean() + half
    assert line.startswith(
        f"- **rsrl − plain**, macro F: {study._signed(mean)} [{study._signed(low)}, "
        f"{study._signed(high)}] over n = 4 paired units (seed × fold): excludes 0: rsrl is "
        f"lower than plain. The study could detect differences of about ±{half:.3f} macro F "
        f"(half-width); at the observed sd ({np.std(d, ddof=1):.3f}), "
        f"{diff['macro_f1']['units_needed']} units ("
        f"{math.ceil(diff['macro_f1']['units_needed'] / 2)} seeds of this study's folds) would "
        "bring it to ±0.01."
    )
    assert "balanced acc. +0.000 [+0.000, +0.000]: includes 0: no detectable difference" in line
    # a study that resolves 0.01 says so
    close = study.against_reference(cell([0.395, 0.415, 0.376, 0.404]), plain, "rsrl")
    assert close["macro_f1"]["half_width"] <= 0.01
    (line,) = study.power_lines({"rsrl": {"diff": close}})[3:]
    assert "(half-width), within the ±0.01 aimed at." in line


def test_folds_checked_before_any_run(tmp_path):
    from rsrl_jax.config import base_config

    for bad in (0, -2, 1.5, True, "3"):
        with pytest.raises(errors.ConfigError, match=r"^--folds: .* is not an integer >= 1"):
            study.check_folds(bad)
    assert study.check_folds(None) is None and study.check_folds(3) == 3
    config = base_config()
    assert study.run_config(config, "plain", 0, 0.1, folds=3).protocol.folds == 3
    assert study.run_config(config, "plain", 0, 0.1).protocol.folds == config.protocol.folds
    # AVA's own test list makes one split: K folds would silently be one
    config.data.name = "ava"
    with pytest.raises(errors.ConfigError, match="--folds: 5 folds, but data.ava_official_split"):
        study.study(config, str(tmp_path / "s"), ["plain"], [0], folds=5)
    assert not (tmp_path / "s").exists()
    assert study.check_folds(1, config) == 1
    config.data.ava_official_split = False
    assert study.check_folds(5, config) == 5


def test_embeddings_default_to_the_measured_budget():
    from rsrl_jax.config import base_config

    config = base_config()
    assert study.default_seeds(config) == study.DEFAULT_SEEDS
    config.data.name = "embeddings"
    assert study.default_seeds(config) == study.EMBEDDINGS_SEEDS == tuple(range(6))


def test_the_budget_note_is_generated_from_study_json(tmp_path):
    import importlib.util
    import pathlib

    from rsrl_jax.data import synthetic

    path = pathlib.Path(__file__).parents[1] / "tools" / "study_budget.py"
    spec = importlib.util.spec_from_file_location("study_budget", path)
    budget = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(budget)
    x, scores = budget.vectors(500, 16, seed=0, strength=1.0, label_noise=0.5)
    assert x.shape == (500, 16) and x.dtype == np.float32
    counts = dict(zip(*np.unique(scores, return_counts=True), strict=True))
    assert counts == {s: n for s, n in synthetic.class_counts(500).items() if n}  # the demo's
    interval = study.paired_interval([-0.03, -0.02, -0.05, -0.04])
    diff = {"macro_f1": {**interval, **study.power(interval, "rsrl", per_seed=2)}}
    out = {
        "command": "python -m rsrl_jax.study --seeds=0,1",
        "runs": 4,
        "methods": {"plain": {}, "rsrl": {}},
        "seeds": [0, 1],
        "label_noise": [0.1],
        "folds": 2,
        "wall_s": 90.0,
        "cpus": 2,
        "noise": {"0.1": {"plain": {"diff": None}, "rsrl": {"diff": diff}}},
    }
    (tmp_path / "study.json").write_text(json.dumps(out))
    lines = budget.note(out).splitlines()
    assert lines[0] == (
        "`python -m rsrl_jax.study --seeds=0,1`: 4 runs (2 methods × 2 seeds), 2 folds each: "
        "4 paired units, in 1.5 min of wall time on 2 CPU cores."
    )
    half = diff["macro_f1"]["half_width"]
    assert lines[-1] == (
        f"| rsrl | {study._diff(interval)} | 4 | ±{half:.4f} (excludes 0: rsrl is lower than "
        f"plain) | {diff['macro_f1']['units_needed']} |"
    )
    assert budget.main(["note", str(tmp_path / "missing")]) == 1


def test_differences_that_round_to_zero_print_without_a_sign_flip():
    d = {"mean": -0.0004, "low": -0.01, "high": 0.0092, "n": 3}
    assert study._diff(d) == "+0.000 [-0.010, +0.009]"


def test_bad_flags_refused_in_one_line_before_any_work(tmp_path):
    cases = {
        "method": ({"methods": "plain,smote"}, "error: --methods: unknown part 'smote'"),
        "seed": ({"seeds": "0,one"}, "error: --seeds: 'one' is not an integer"),
        "noise": ({"noise": "0.1,-1"}, "error: --label_noise: -1.0 is not a number >= 0"),
        "folds": ({"folds": "0"}, "error: --folds: 0 is not an integer >= 1"),
        "folds_word": ({"folds": "two"}, "error: --folds=two: invalid literal for int()"),
    }
    procs = {
        name: subprocess.Popen(
            study_command(tmp_path / name, **kwargs),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (kwargs, _) in cases.items()
    }
    for name, proc in procs.items():
        _, stderr = proc.communicate()
        assert proc.returncode == 2, stderr[-2000:]
        assert stderr.strip().splitlines()[-1].startswith(cases[name][1]), stderr[-2000:]
        assert len(stderr.strip().splitlines()) == 1, stderr[-2000:]
        assert not (tmp_path / name).exists()


def test_study_figures_match_the_runs(tiny_study):
    workdir, result = tiny_study
    assert result.stdout.strip().endswith("study.md")
    with Image.open(workdir / "study.png") as png:
        assert png.size[0] > 500
    out = json.loads((workdir / "study.json").read_text())
    assert list(out["methods"]) == list(METHODS) and out["seeds"] == list(SEEDS)
    # the budget: runs, folds, this command's wall time and the command itself
    assert (out["runs"], out["folds"]) == (len(METHODS) * len(SEEDS) * len(NOISE), FOLDS)
    assert out["wall_s"] > 0 and out["command"].startswith("python -m rsrl_jax.study ")
    assert f"--folds={FOLDS}" in out["command"]
    # no report per run (its figures cost more than its lanes' training); `report` draws it
    run = workdir / workdir_files.study_run_dir(NOISE[0], SEEDS[0], METHODS[0])
    assert (run / "metrics.jsonl").exists() and not (run / "report").exists()
    table = (workdir / "study.md").read_text()
    assert "python -m rsrl_jax.report --workdir=" in table
    num_majority = out["config"]["rsrl"]["num_majority"]
    against_scipy = 0
    for noise in NOISE:
        key = f"{noise:g}"
        assert f"## Rater noise {key}" in table
        chosen = {}  # method -> [(seed, fold) -> verdict figures]
        rows = {}
        for method in METHODS:
            chosen[method], rows[method] = {}, []
            for seed in SEEDS:
                run = workdir / f"noise_{key}" / f"seed_{seed}" / method
                config = json.loads((run / "config.json").read_text())
                assert config["seed"] == seed and config["data"]["label_noise"] == noise
                assert config["protocol"]["folds"] == FOLDS
                assert config["train"]["epoch_samples"] == "all"
                records = read_records(run)
                for fold in sorted({r["fold"] for r in records}):
                    rs = sorted((r for r in records if r["fold"] == fold), key=lambda r: r["round"])
                    best = max(rs, key=lambda r: (r["val"]["macro_f1"], -r["round"]))
                    majority = fold_stats.majority_scores(rs[0], num_majority)
                    test = best["test"]
                    recall = {
                        group: [
                            c["recall"]
                            for s, c in test["per_class"].items()
                            if (s in majority) == (group == "majority") and c["support"]
                        ]
                        for group in ("majority", "minority")
                    }
                    on_test = max(rs, key=lambda r: (r["test"]["macro_f1"], -r["round"]))
                    chosen[method][seed, fold] = {
                        "paper": on_test["test"]["macro_f1"],  # the round chosen on test
                        "macro_f1": test["macro_f1"],
                        "balanced_accuracy": test["balanced_accuracy"],
                        "minority_recall": float(np.mean(recall["minority"])),
                        "majority_recall": float(np.mean(recall["majority"])),
                    }
                    for r in rs[1:]:
                        for s in r.get("selection", {}).values():
                            rows[method].append(s)
        for method in METHODS:
            cell = out["noise"][key][method]
            for name in study.FIGURES:
                values = [v[name] for v in chosen[method].values()]
                assert cell[name]["mean"] == pytest.approx(np.mean(values))
                assert cell[name]["std"] == pytest.approx(np.std(values))
                assert cell[name]["n"] == len(values) == len(SEEDS) * FOLDS
            # the paper's protocol (round chosen on test) and its inflation over validation's
            paper = cell["paper_protocol"]
            on_test = [v["paper"] for v in chosen[method].values()]
            inflation = [v["paper"] - v["macro_f1"] for v in chosen[method].values()]
            assert min(inflation) >= 0
            assert paper["macro_f1"]["mean"] == pytest.approx(np.mean(on_test))
            assert paper["inflation"]["mean"] == pytest.approx(np.mean(inflation))
            assert paper["inflation"]["n"] == len(SEEDS) * FOLDS
        # the paired difference rsrl - plain, over seed x fold, and its t interval
        diff = out["noise"][key][SELECTING]["diff"]["macro_f1"]
        d = [
            chosen[SELECTING][u]["macro_f1"] - chosen["plain"][u]["macro_f1"]
            for u in chosen[SELECTING]
        ]
        sem = np.std(d, ddof=1) / math.sqrt(len(d))
        if sem > 0:
            low, high = stats.t.interval(0.95, len(d) - 1, loc=np.mean(d), scale=sem)
            against_scipy += 1
        else:  # the tiny networks may agree on every unit: scipy's interval is nan, ours a point
            low = high = np.mean(d)
        assert diff["mean"] == pytest.approx(np.mean(d))
        assert (diff["low"], diff["high"]) == pytest.approx((low, high))
        assert diff["n"] == len(d) == len(SEEDS) * FOLDS  # paired by (seed, fold)
        assert diff["half_width"] == pytest.approx((high - low) / 2)
        assert out["noise"][key]["plain"]["diff"] is None
        # selection truth, pooled by hand: mislabelled photos / photos of each set
        assert out["noise"][key]["plain"]["selection"] is None or all(
            s["dropped"] == 0 for s in rows["plain"]
        )
        sel = out["noise"][key][SELECTING]["selection"]
        dropped = sum(s["dropped"] for s in rows[SELECTING])
        kept = sum(s["kept"] for s in rows[SELECTING])
        m_kept = sum(
            round(s["kept_mislabelled_share"] * s["kept"]) for s in rows[SELECTING] if s["kept"]
        )
        assert sel["kept"] == pytest.approx(m_kept / kept)
        if dropped:
            m_dropped = sum(
                round(s["dropped_mislabelled_share"] * s["dropped"])
                for s in rows[SELECTING]
                if s["dropped"]
            )
            assert sel["dropped"] == pytest.approx(m_dropped / dropped)
        assert sel == selection_truth.pooled(
            [
                r
                for seed in SEEDS
                for r in selection_truth.truth_rows(
                    read_records(workdir / f"noise_{key}" / f"seed_{seed}" / SELECTING)
                )
                if r["round"] >= 2
            ]
        )

    assert against_scipy  # at least one noise level where the methods differ


def test_study_reports_the_aesthetic_figures(tiny_study):
    workdir, _ = tiny_study
    out = json.loads((workdir / "study.json").read_text())
    table = (workdir / "study.md").read_text().splitlines()
    for noise in NOISE:
        key = f"{noise:g}"
        chosen = {}  # method -> [(seed, fold) -> the chosen round's test figures]
        for method in METHODS:
            chosen[method] = {}
            for seed in SEEDS:
                records = read_records(workdir / f"noise_{key}" / f"seed_{seed}" / method)
                for fold, rs in fold_stats.by_fold(records).items():
                    best = max(rs, key=lambda r: (r["val"]["macro_f1"], -r["round"]))
                    chosen[method][seed, fold] = best["test"]
        for method in METHODS:
            cell = out["noise"][key][method]
            for name in study.AESTHETIC:
                values = [t[name] for t in chosen[method].values() if t[name] is not None]
                assert cell[name]["n"] == len(values)
                if values:
                    assert cell[name]["mean"] == pytest.approx(np.mean(values))
                    assert cell[name]["std"] == pytest.approx(np.std(values))
        diff = out["noise"][key][SELECTING]["diff"]["mae"]  # MAE is always defined
        d = [chosen[SELECTING][u]["mae"] - chosen["plain"][u]["mae"] for u in chosen["plain"]]
        assert diff["mean"] == pytest.approx(np.mean(d)) and diff["n"] == len(d)
        start = table.index(f"## Rater noise {key}")
        header = table.index("| method | SRCC | PLCC | MAE | RMSE | binary acc. |", start)
        plain = out["noise"][key]["plain"]["mae"]
        assert table[header + 2].startswith("| plain | ")
        assert f"| {plain['mean']:.3f} ± {plain['std']:.3f} |" in table[header + 2]


def test_study_rerun_reuses_finished_runs(tiny_study):
    workdir, _ = tiny_study
    metrics = workdir / "noise_0.1" / "seed_0" / SELECTING / "metrics.jsonl"
    before = metrics.read_text()
    out_before = json.loads((workdir / "study.json").read_text())
    run_study(workdir)
    assert metrics.read_text() == before
    # the same study.json, wall time included: the budget measured when the runs ran
    assert json.loads((workdir / "study.json").read_text()) == out_before


@pytest.fixture
def embeddings_config(tmp_path):
    """test_lanes' embeddings config (one fold of 2 short rounds, a small MLP), 200 vectors."""
    from test_embeddings_run import vectors
    from test_lanes import base_config

    from rsrl_jax.data import embeddings

    x, scores = vectors(200, seed=0)
    embeddings.write(str(tmp_path / "emb"), x, [f"p{i}.jpg" for i in range(len(x))], scores)
    return base_config(tmp_path / "emb")


def test_wall_time_is_the_sum_of_the_commands_that_trained(embeddings_config, tmp_path):
    from rsrl_jax.experiments import study_commands

    workdir = str(tmp_path / "s")
    files = workdir_files.StudyFiles(workdir)
    study.study(embeddings_config, workdir, ["plain"], [0], command="first")
    first = study_commands.read(files)
    assert [(e["command"], e["how"]) for e in first] == [("first", "finished")]
    out = study.study(embeddings_config, workdir, ["plain"], [0, 1], command="one more seed")
    both = study_commands.read(files)
    assert both[0] == first[0]
    assert [(e["command"], e["how"]) for e in both[1:]] == [("one more seed", "finished")]
    assert out["wall_s"] == sum(e["wall_s"] for e in both) > both[1]["wall_s"] > 0
    assert out["commands"] == 2
    assert json.loads(open(files.json).read())["wall_s"] == out["wall_s"]
    said = f"wall time {out['wall_s']:.0f} s over 2 commands that trained runs"
    assert said in open(files.table).read()
    # a rebuild over finished runs trains nothing: it adds no line and keeps the total
    again = study.study(embeddings_config, workdir, ["plain"], [0, 1], command="rebuild")
    assert study_commands.read(files) == both
    assert (again["wall_s"], again["commands"]) == (out["wall_s"], 2)


def test_a_killed_commands_time_counts_to_its_last_recorded_round(embeddings_config, tmp_path):
    from conftest import Killed
    from rsrl_jax.engine import rsrl
    from rsrl_jax.experiments import study_commands

    workdir = str(tmp_path / "s")
    files = workdir_files.StudyFiles(workdir)
    run_lanes = rsrl.run_lanes

    def killed_after_training(*args, **kwargs):
        run_lanes(*args, **kwargs)
        raise Killed

    with pytest.MonkeyPatch.context() as patch, pytest.raises(Killed):
        patch.setattr(rsrl, "run_lanes", killed_after_training)
        study.study(embeddings_config, workdir, ["plain"], [0], command="killed")
    (open_line,) = study_commands.read(files)
    assert (open_line["command"], open_line["wall_s"]) == ("killed", None)
    run = files.run(float(embeddings_config.data.label_noise), 0, "plain")
    metrics = workdir_files.WorkdirFiles(run).metrics
    last_round = os.path.getmtime(metrics)
    out = study.study(embeddings_config, workdir, ["plain"], [0], command="rebuild")
    (line,) = study_commands.read(files)  # the rebuild trained nothing: no line of its own
    assert line["how"] == "killed"
    assert line["wall_s"] == last_round - open_line["began"] > 0
    assert (out["wall_s"], out["commands"]) == (line["wall_s"], 1)


def test_a_study_json_from_before_keeps_its_wall_time(embeddings_config, tmp_path):
    from rsrl_jax.experiments import study_commands

    workdir = str(tmp_path / "s")
    files = workdir_files.StudyFiles(workdir)
    study.study(embeddings_config, workdir, ["plain"], [0], command="old")
    os.remove(files.commands)  # a study.json written before commands.jsonl was
    old = json.loads(open(files.json).read())
    del old["commands"]
    old["wall_s"] = 123.0
    open(files.json, "w").write(json.dumps(old))
    out = study.study(embeddings_config, workdir, ["plain"], [0], command="rebuild")
    assert (out["wall_s"], out["commands"]) == (123.0, 1)
    assert [(e["command"], e["how"]) for e in study_commands.read(files)] == [("old", "before")]


def test_a_command_killed_before_any_round_adds_no_time(tmp_path):
    """A run's metrics.jsonl is created empty when it starts: no round, no recovered time."""
    import time

    from rsrl_jax import workdir_files
    from rsrl_jax.experiments import study_commands

    files = workdir_files.StudyFiles(str(tmp_path))
    began = time.time() - 60
    for seed, text in ((0, ""), (1, '{"round": 1}\n')):
        run = files.run(0.5, seed, "plain")
        os.makedirs(run)
        with open(workdir_files.WorkdirFiles(run).metrics, "w") as f:
            f.write(text)
        if not text:  # only the empty file: the command added nothing
            line = study_commands.recovered(files, {"began": began}, time.time() + 1)
            assert line["wall_s"] == 0.0 and line["how"] == "killed"
    line = study_commands.recovered(files, {"began": began}, time.time() + 1)
    assert 0 < line["wall_s"] <= time.time() + 1 - began  # up to seed 1's round
