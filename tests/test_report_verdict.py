"""The report's verdict and round choice, from hand-made metrics.jsonl records (no training)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from rsrl_jax.analysis import report, report_figures
from rsrl_jax.metrics import aesthetic, fold_stats

SCORES = (3, 4, 5, 6, 7)
D_SUPPORT = {"3": 10, "4": 40, "5": 60, "6": 30, "7": 5}  # majority (2 largest): 5 and 4
TEST_SUPPORT = {"3": 4, "4": 10, "5": 15, "6": 8, "7": 2}
VAL_SUPPORT = {"3": 2, "4": 8, "5": 12, "6": 6, "7": 1}
EVEN = dict.fromkeys(D_SUPPORT, 0.5)


def split(macro_f1, recalls, supports):
    """A split's metrics as the run records them, with the per-class recalls given."""
    keys = list(supports)
    confusion = np.zeros((len(keys), len(keys)), int)
    for i, k in enumerate(keys):
        right = round(recalls[k] * supports[k])
        confusion[i, i] = right
        confusion[i, (i + 1) % len(keys)] = supports[k] - right
    total = sum(supports.values())
    return {
        "macro_f1": macro_f1,
        "balanced_accuracy": float(np.mean([recalls[k] for k in keys if supports[k]])),
        "accuracy": float(np.trace(confusion) / total),
        "num_examples": total,
        "per_class": {
            k: {
                "precision": recalls[k],
                "recall": recalls[k],
                "f1": recalls[k],
                "support": supports[k],
                "present": True,
            }
            for k in keys
        },
        "confusion_matrix": confusion.tolist(),
    }


def record(fold, round_, val_f1, test_f1, test_recalls=EVEN):
    train = split(0.5, EVEN, D_SUPPORT)
    return {
        "fold": fold,
        "round": round_,
        "train_size": 145 - 10 * round_,
        "class_counts": {k: n - 2 * round_ if k in ("4", "5") else n for k, n in D_SUPPORT.items()},
        "train": train,
        "train_kept": train,
        "val": split(val_f1, EVEN, VAL_SUPPORT),
        "test": split(test_f1, test_recalls, TEST_SUPPORT),
    }


def write_workdir(path, records, num_majority=2):
    """A workdir as the report reads it: metrics.jsonl, classes.json, config.json."""
    path.mkdir(exist_ok=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (path / "classes.json").write_text(json.dumps({"class_scores": list(SCORES)}))
    (path / "config.json").write_text(json.dumps({"rsrl": {"num_majority": num_majority}}))
    return path


ROUND1_RECALLS = {"3": 0.5, "4": 0.6, "5": 0.8, "6": 0.25, "7": 0.0}
ROUND3_RECALLS = {"3": 0.25, "4": 0.3, "5": 0.9, "6": 0.0, "7": 0.0}


def losing_run():
    """One split; validation prefers round 3, which is the worst round on test."""
    return [
        record(0, 1, 0.20, 0.227, ROUND1_RECALLS),
        record(0, 2, 0.25, 0.200),
        record(0, 3, 0.30, 0.183, ROUND3_RECALLS),
    ]


def test_a_chosen_round_that_loses_to_round_1_is_called_worse(tmp_path):
    workdir = write_workdir(tmp_path / "run", losing_run())
    text = open(report.write_report(str(workdir))).read()
    lines = text.splitlines()
    assert lines[0] == "# RSRL run report"
    # By hand: balanced accuracy = mean recall (0.43 vs 0.29); majority = scores 4, 5;
    # minority = 3, 6, 7: (0.5 + 0.25 + 0) / 3 and (0.25 + 0 + 0) / 3.
    assert lines[2].startswith(
        "**Verdict.** The chosen round 3 is worse than round 1 on test: macro F 0.183 vs "
        "0.227, balanced accuracy 0.290 vs 0.430, minority recall 0.083 vs 0.250, majority "
        "recall 0.600 vs 0.700. With one split (`protocol.folds=1`) the fold-to-fold spread "
        "is unknown"
    )
    assert "Majority: the 2 largest classes of the training data (scores 5, 4)" in lines[2]
    assert (
        "In 1 of 1 fold the validation choice was not the test-best round (fold 0: round 3 "
        "chosen, round 1 best on test, 0.044 lower test macro F)." in text
    )
    # One split: how small the validation classes are, the smallest named.
    assert (
        "With one split the round is chosen on one validation part of 29 photos: score 3: 2, "
        "score 4: 8, score 5: 12, score 6: 6, score 7: 1. Its smallest class, score 7, has 1 "
        "photo: one photo more or less right moves that class's validation recall by 1.000."
    ) in text
    # The per-round table, the chosen round marked; accuracy 18/39 and 22/39 right.
    # (no aesthetic figures in these records, as in a run made before them: "–")
    assert "| 3 | 115 | 0.300 | 0.183 | 0.290 | 0.462 | – | – | chosen |" in text
    assert "| 1 | 135 | 0.200 | 0.227 | 0.430 | 0.564 | – | – |  |" in text
    assert "the chosen round: SRCC –, PLCC –, MAE –, RMSE –, binary acc. –; round 1:" in text
    assert "(–: undefined in every fold, e.g. a correlation with constant predictions)" in text


def paired_run(round1, round2):
    """Folds whose validation picks round 2; test macro F per fold of rounds 1 and 2."""
    return [
        rec
        for fold, (a, b) in enumerate(zip(round1, round2, strict=True))
        for rec in (record(fold, 1, 0.3, a), record(fold, 2, 0.4, b), record(fold, 3, 0.35, a))
    ]


def test_a_gain_beyond_the_fold_spread_is_called_so(tmp_path):
    round1, round2 = [0.20, 0.22, 0.18, 0.21], [0.30, 0.31, 0.27, 0.33]
    workdir = write_workdir(tmp_path / "run", paired_run(round1, round2))
    verdict = open(report.write_report(str(workdir))).read().splitlines()[2]
    diffs = np.subtract(round2, round1)  # 0.10, 0.09, 0.09, 0.12: std 0.012
    assert verdict.startswith(
        "**Verdict.** The chosen round 2 is better than round 1 on test (mean ± std over 4 "
        f"folds): macro F {np.mean(round2):.3f} ± {np.std(round2):.3f} vs "
        f"{np.mean(round1):.3f} ± {np.std(round1):.3f}, "
    )
    assert (
        f"Fold by fold, chosen minus round 1 in test macro F is +{diffs.mean():.3f} ± "
        f"{diffs.std():.3f} (better in 4, worse in 0 of 4 folds): larger than its fold-to-fold "
        "spread." in verdict
    )


def test_a_gain_within_the_fold_spread_is_not_called_consistent(tmp_path):
    workdir = write_workdir(tmp_path / "run", paired_run([0.2, 0.3, 0.2], [0.35, 0.2, 0.25]))
    verdict = open(report.write_report(str(workdir))).read().splitlines()[2]
    assert "The chosen round 2 is better than round 1" in verdict
    assert "(better in 2, worse in 1 of 3 folds): not larger than its fold-to-fold spread" in (
        verdict
    )


# Per fold: (validation macro F, test macro F) of rounds 1, 2, 3.
DISAGREEING = {
    0: ((0.30, 0.30), (0.40, 0.35), (0.35, 0.32)),  # val picks 2, test-best 2
    1: ((0.30, 0.41), (0.30, 0.30), (0.50, 0.25)),  # val picks 3, test-best 1: cost 0.16
    2: ((0.50, 0.30), (0.40, 0.38), (0.40, 0.30)),  # val picks 1, test-best 2: cost 0.08
    3: ((0.20, 0.30), (0.30, 0.33), (0.40, 0.33)),  # val picks 3, tied with test-best 2
}


def test_how_often_validation_misses_the_test_best_round_by_hand(tmp_path):
    records = [
        record(fold, round_, val, test)
        for fold, rounds in DISAGREEING.items()
        for round_, (val, test) in enumerate(rounds, start=1)
    ]
    summary = fold_stats.summarize(records)
    per_fold = summary["against_test_best"]["per_fold"]
    assert per_fold["not_test_best"] == 2  # folds 1 and 2; fold 3's tie counts as test-best
    assert [f["cost"] for f in per_fold["folds"]] == pytest.approx([0, 0.16, 0.08, 0])
    assert per_fold["cost_where_missed"]["mean"] == pytest.approx(0.12)
    assert per_fold["cost"]["mean"] == pytest.approx(0.06)
    # Over folds: mean validation macro F 0.325, 0.35, 0.4125: round 3 for every fold, which
    # misses the test-best round in folds 0 (0.35 vs 0.32), 1 and 2.
    assert summary["over_folds"]["round"] == 3
    assert summary["over_folds"]["val_macro_f1"]["mean"] == pytest.approx(0.4125)
    assert summary["against_test_best"]["over_folds"]["not_test_best"] == 3

    workdir = write_workdir(tmp_path / "run", records)
    text = open(report.write_report(str(workdir))).read()
    assert (
        "In 2 of 4 folds the validation choice was not the test-best round (fold 1: round 3 "
        "chosen, round 1 best on test, 0.160 lower test macro F; fold 2: round 1 chosen, "
        "round 2 best on test, 0.080 lower test macro F): it cost 0.120 test macro F on "
        "average where it missed, 0.060 over all 4 folds." in text
    )
    assert "The rounds chosen on validation (fold 0: 2, fold 1: 3, fold 2: 1, fold 3: 3)" in text
    assert "Averaged over the folds, round 3 has the best validation macro F" in text
    assert "misses the test-best round in 3 of 4 folds" in text

    text = open(report.write_report(str(workdir), rule="over_folds")).read()
    assert "**Verdict.** The chosen round 3 is " in text.splitlines()[2]
    assert "Every fold takes round 3, the best on validation macro F averaged" in text
    assert "In 3 of 4 folds the validation choice was not the test-best round" in text


def test_every_figure_is_written_and_zero_classes_stay_visible(tmp_path):
    never = {"3": 0.5, "4": 0.6, "5": 0.8, "6": 0.0, "7": 0.0}  # scores 6 and 7 never right
    records = [record(0, r, 0.3, 0.2, never) for r in (1, 2, 3)]
    workdir = write_workdir(tmp_path / "run", records)
    report.write_report(str(workdir))
    for name in report.FIGURES.values():
        with Image.open(workdir / "report" / name) as im:
            assert im.format == "PNG" and im.width >= 400, name
    assert "![macro F per round](macro_f1.png)" in (workdir / "report" / "report.md").read_text()
    # Scores 6 and 7 have test recall 0 in every round: their curves must not lie on one
    # another, and stay at 0 (shifted sideways, not below the axis).
    fig = report_figures.plot_per_class(records, SCORES, "test", str(tmp_path / "per_class.png"))
    recall_lines = fig.axes[1].get_lines()
    assert len(recall_lines) == len(SCORES)
    zeros = [line.get_xdata() for line in recall_lines if not line.get_ydata().any()]
    assert len(zeros) == 2 and abs(zeros[0][0] - zeros[1][0]) >= report_figures.CLASS_OFFSET


def test_the_report_command_takes_the_round_choice(tmp_path):
    workdir = write_workdir(tmp_path / "run", paired_run([0.2, 0.3], [0.35, 0.2]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsrl_jax.report",
            f"--workdir={workdir}",
            "--round_choice=over_folds",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Every fold takes round 2" in (workdir / "report" / "report.md").read_text()


def test_a_gap_below_a_hundredth_is_called_about_level(tmp_path):
    runs = [record(0, 1, 0.20, 0.241), record(0, 2, 0.30, 0.243)]
    workdir = write_workdir(tmp_path / "run", runs)
    verdict = open(report.write_report(str(workdir))).read().splitlines()[2]
    assert verdict.startswith(
        "**Verdict.** The chosen round 2 is about level with round 1 on test: macro F 0.243 "
        "vs 0.241"
    )


def test_aesthetic_figures_over_folds_leave_undefined_folds_out(tmp_path):
    """Two folds choose round 2; fold 1's round-2 SRCC is undefined (None in the record)."""
    records = paired_run([0.2, 0.2], [0.3, 0.3])
    figures = {  # (fold, round) -> test srcc, plcc, mae, rmse, binary accuracy
        (0, 1): (0.1, 0.2, 1.0, 1.5, 0.5),
        (1, 1): (0.3, 0.4, 1.2, 1.7, 0.7),
        (0, 2): (0.5, 0.6, 0.8, 1.1, 0.8),
        (1, 2): (None, None, 0.6, 0.9, 0.6),
        (0, 3): (0.0, 0.0, 2.0, 2.0, 0.1),
        (1, 3): (0.0, 0.0, 2.0, 2.0, 0.1),
    }
    for r in records:
        r["test"].update(zip(aesthetic.FIGURES, figures[r["fold"], r["round"]], strict=True))
    workdir = write_workdir(tmp_path / "run", records)
    text = open(report.write_report(str(workdir))).read()
    (line,) = [t for t in text.splitlines() if t.startswith("Aesthetic figures on test")]
    assert line.endswith(
        "the chosen round: SRCC 0.500, PLCC 0.600, MAE 0.700 ± 0.100, RMSE 1.000 ± 0.100, "
        "binary acc. 0.700 ± 0.100; round 1: SRCC 0.200 ± 0.100, PLCC 0.300 ± 0.100, MAE "
        "1.100 ± 0.100, RMSE 1.600 ± 0.100, binary acc. 0.600 ± 0.100."
    )
    assert "| 2 | 125 ± 0 | 0.400 ± 0.000 | 0.300 ± 0.000 |" in text
    assert "| 0.500 | 0.600 | chosen |" in text  # round 2's SRCC and PLCC: fold 0 only
    summary = fold_stats.summarize(records)["rounds"][1]["test"]
    assert summary["srcc"] == {"mean": 0.5, "std": 0.0, "n": 1}
    fig = report_figures.plot_aesthetic(records, str(tmp_path / "aesthetic.png"))
    test_srcc = fig.axes[0].get_lines()[2]  # train, val (no figures: a gap), test
    assert test_srcc.get_label() == "test"
    np.testing.assert_allclose(test_srcc.get_ydata(), [0.2, 0.5, 0.0])
    assert np.isnan(fig.axes[0].get_lines()[1].get_ydata()).all()
    with Image.open(workdir / "report" / "aesthetic.png") as im:
        assert im.width >= 400


def test_a_round_worse_on_macro_f_but_better_for_the_minority_says_both(tmp_path):
    """The demo's case: the chosen round loses macro F but gains minority recall."""
    better_minority = {"3": 0.75, "4": 0.3, "5": 0.5, "6": 0.5, "7": 0.5}
    records = [
        record(0, 1, 0.20, 0.227, ROUND1_RECALLS),
        record(0, 2, 0.30, 0.183, better_minority),
    ]
    workdir = write_workdir(tmp_path / "run", records)
    verdict = open(report.write_report(str(workdir))).read().splitlines()[2]
    # minority (3, 6, 7): (0.75 + 0.5 + 0.5) / 3 = 0.583 vs (0.5 + 0.25 + 0) / 3 = 0.250;
    # balanced accuracy 0.510 vs 0.430; majority (4, 5): 0.400 vs 0.700.
    assert verdict.startswith(
        "**Verdict.** The chosen round 2 is worse than round 1 in macro F but better in "
        "balanced accuracy and minority recall, on test: macro F 0.183 vs 0.227, balanced "
        "accuracy 0.510 vs 0.430, minority recall 0.583 vs 0.250, majority recall 0.400 vs "
        "0.700."
    )
