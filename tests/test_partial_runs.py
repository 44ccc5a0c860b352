"""A partial run says it is partial: killed, still training, or limited by protocol.max_folds.

Workdirs are made by hand (records of test_report_verdict) or copied from the shared tiny
run and cut back: no training here.
"""

import json
import logging
import re
import shutil
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
from PIL import Image
from test_report_verdict import ROUND1_RECALLS, record, write_workdir

from rsrl_jax import errors
from rsrl_jax.analysis import compare_table, highlight, report, report_verdict
from rsrl_jax.config import base_config
from rsrl_jax.data import identity, synthetic
from rsrl_jax.engine import predict
from rsrl_jax.experiments import study
from rsrl_jax.run import checkpoints, completeness, round_pairs
from rsrl_jax.workdir_files import WorkdirFiles


def ran(done: dict[int, range]) -> list[dict]:
    return [{"fold": f, "round": r} for f, rounds in done.items() for r in rounds]


def plan(rounds=3, folds=5, max_folds=0) -> dict:
    return {"rsrl": {"rounds": rounds}, "protocol": {"folds": folds, "max_folds": max_folds}}


def test_a_complete_run_has_no_line():
    found = completeness.of_records(ran({0: range(1, 4), 1: range(1, 4)}), plan(folds=2))
    assert not found.partial and found.line() == ""
    assert found.to_json()["missing_rounds"] == {} and found.to_json()["missing_folds"] == []


def test_a_fold_killed_after_2_of_3_rounds_and_folds_not_run():
    found = completeness.of_records(ran({0: range(1, 4), 1: range(1, 3)}), plan())
    assert found.partial and found.rounds_missing
    assert found.missing_folds == [2, 3, 4] and found.missing_rounds(1) == [3]
    assert found.line() == (
        "partial run: fold 1 has rounds 1-2 of rsrl.rounds=3 (round 3 did not run); folds 2-4 "
        "of protocol.folds=5 did not run; if the run is not still training, run its command "
        "again on the workdir to finish it"
    )


def test_folds_short_alike_are_named_together_and_a_missing_middle_fold_is_named():
    found = completeness.of_records(ran({0: range(1, 2), 2: range(1, 2)}), plan(folds=3))
    assert found.line() == (
        "partial run: folds 0, 2 have round 1 of rsrl.rounds=3 (rounds 2-3 did not run); fold 1 "
        "of protocol.folds=3 did not run; if the run is not still training, run its command "
        "again on the workdir to finish it"
    )
    assert found.not_run(1) == (
        "fold 1 did not run (folds 0, 2 of protocol.folds=3 ran); if the run is not still "
        "training, run its command again on the workdir to finish it"
    )


def test_max_folds_is_partial_and_names_the_setting():
    found = completeness.of_records(ran({0: range(1, 4)}), plan(max_folds=1))
    assert found.partial and not found.rounds_missing
    assert found.line() == (
        "partial run: folds 1-4 of protocol.folds=5 did not run (protocol.max_folds=1 leaves "
        "them out; --config.protocol.max_folds=0 adds them)"
    )
    assert "protocol.max_folds=1 left it out" in found.not_run(3)


def test_a_forced_resume_with_more_rounds_plans_more_and_fewer_is_not_partial():
    more = completeness.of_records(ran({0: range(1, 4)}), plan(rounds=5, folds=1))
    assert more.missing_rounds(0) == [4, 5] and "(rounds 4-5 did not run)" in more.line()
    fewer = completeness.of_records(ran({0: range(1, 6)}), plan(rounds=3, folds=1))
    assert not fewer.partial


def test_requests_for_what_did_not_run_and_for_what_the_plan_lacks():
    found = completeness.of_records(ran({0: range(1, 3)}), plan(folds=2))
    assert found.not_run(0, 3) == (
        "round 3 of fold 0 did not run (fold 0 has rounds 1-2 of rsrl.rounds=3); use one of "
        "those, or, if the run is not still training, run its command again on the workdir to "
        "finish it"
    )
    assert found.not_run(0, 2) is None  # it ran
    assert found.not_run(0, 7) is None  # not in the plan: the old message says so
    assert found.not_run(5) is None
    assert found.not_run(1).startswith("fold 1 did not run (fold 0 of protocol.folds=2 ran)")


def test_a_request_outside_the_plan_names_the_plan():
    found = completeness.of_records(ran({0: range(1, 3)}), plan(folds=1))
    assert found.outside_plan(1) == (
        "fold 1 does not exist: the run has folds 0..0 (protocol.folds=1)"
    )
    assert found.outside_plan(-1).startswith("fold -1 does not exist")
    assert found.outside_plan(0, 4) == (
        "round 4 does not exist: the run plans rounds 1-3 (rsrl.rounds=3)"
    )
    assert found.outside_plan(0, 0).startswith("round 0 does not exist")
    assert found.outside_plan(0, 3) is None  # planned (not run: not_run says so)
    official = completeness.of_records(ran({0: range(1, 2)}), plan(rounds=1), folds=1)
    assert official.outside_plan(0, 2) == (
        "round 2 does not exist: the run plans round 1 (rsrl.rounds=1)"
    )
    assert official.outside_plan(2) == (
        "fold 2 does not exist: the run has folds 0..0 (its data record, with protocol.folds=5)"
    )
    assert completeness.of_records([], None).outside_plan(3, 9) is None  # no plan known


def test_without_a_config_the_fullest_fold_stands_for_the_plan(tmp_path):
    write_workdir(
        tmp_path, [record(0, 1, 0.2, 0.2), record(0, 2, 0.2, 0.2), record(1, 1, 0.2, 0.2)]
    )
    (tmp_path / "config.json").unlink()
    found = completeness.of_workdir(str(tmp_path))
    assert found.line().startswith("partial run: fold 1 has round 1 of rsrl.rounds=2")


def test_the_data_record_counts_the_folds(tmp_path):
    """An official test list is one fold whatever protocol.folds says: complete."""
    write_workdir(tmp_path, [record(0, 1, 0.2, 0.2)])
    (tmp_path / "config.json").write_text(json.dumps(plan(rounds=1, folds=5)))
    assert completeness.of_workdir(str(tmp_path)).missing_folds == [1, 2, 3, 4]
    parts = {f"fold0_{p}": np.arange(3, dtype=np.int32) for p in identity.PARTS}
    np.savez(WorkdirFiles(str(tmp_path)).identity, **parts)
    assert not completeness.of_workdir(str(tmp_path)).partial


def killed_after_two_of_three(path):
    """One split; validation prefers round 1 among the two rounds that ran."""
    write_workdir(path, [record(0, 1, 0.30, 0.227, ROUND1_RECALLS), record(0, 2, 0.25, 0.200)])
    config = {"rsrl": {"num_majority": 2, "rounds": 3}, "protocol": {"folds": 1}}
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_the_report_opens_with_the_partial_line_and_judges_only_the_rounds_that_ran(tmp_path):
    workdir = killed_after_two_of_three(tmp_path / "run")
    result = subprocess.run(
        [sys.executable, "-m", "rsrl_jax.report", f"--workdir={workdir}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    line = (
        "partial run: fold 0 has rounds 1-2 of rsrl.rounds=3 (round 3 did not run); if the run "
        "is not still training, run its command again on the workdir to finish it"
    )
    assert f"{workdir}: {line}" in result.stderr  # the command says it too
    text = (workdir / "report" / "report.md").read_text().splitlines()
    assert text[2] == f"**P{line[1:]}.**"  # before the verdict
    assert text[4].startswith(
        "**Verdict.** The chosen round is round 1 itself: on validation no later round that "
        "ran did better, so the rounds that ran show no gain over round 1; the rounds that "
        "did not run are not judged"
    )
    assert "show no gain from the later rounds" not in "\n".join(text)


def test_a_verdict_on_fewer_rounds_or_folds_says_so(tmp_path):
    workdir = write_workdir(
        tmp_path, [record(0, 1, 0.20, 0.227, ROUND1_RECALLS), record(0, 2, 0.25, 0.300)]
    )
    config = {"rsrl": {"num_majority": 2, "rounds": 3}, "protocol": {"folds": 5}}
    (workdir / "config.json").write_text(json.dumps(config))
    verdict = " ".join(
        report_verdict.verdict(
            report.read_records(str(workdir)),
            {0: 2},
            2,
            completeness.of_workdir(str(workdir)),
        )
    )
    assert verdict.startswith("**Verdict.** Of the rounds that ran, the chosen round 2 is better")
    assert "With one fold of protocol.folds=5 (the others did not run)" in verdict
    only_round1 = completeness.of_records(ran({0: range(1, 2)}), plan(folds=1))
    verdict = " ".join(report_verdict.verdict([record(0, 1, 0.2, 0.2)], {0: 1}, 2, only_round1))
    assert "no later round ran, so this run says nothing yet about the later rounds" in verdict


def test_a_verdict_on_one_fold_of_several_says_so_whatever_round_was_chosen():
    """protocol.max_folds=1 of 3 folds: the spread is unknown, also when round 1 is chosen."""
    records = [record(0, 1, 0.30, 0.2), record(0, 2, 0.20, 0.2)]
    limited = completeness.of_records(records, plan(rounds=2, folds=3, max_folds=1))
    for chosen in (1, 2):
        verdict = " ".join(report_verdict.verdict(records, {0: chosen}, 2, limited))
        assert (
            "With one fold of protocol.folds=3 (the others did not run) the fold-to-fold spread "
            "is unknown: nothing here tells this " in verdict
        ), verdict
    one_split = completeness.of_records(records, plan(rounds=2, folds=1))
    verdict = " ".join(report_verdict.verdict(records, {0: 1}, 2, one_split))
    assert "With one split (`protocol.folds=1`) the fold-to-fold spread is unknown" in verdict
    assert "the others did not run" not in verdict


def run_cut_back(tiny_run, path, keep_rounds: int, rounds: int, folds: int = 1):
    """A copy of the tiny run (2 rounds, 1 fold) planned as `rounds` rounds and `folds` folds
    (as a forced resume or a longer protocol would), with only its first `keep_rounds`
    rounds: the others' checkpoints and records gone, and no summary when it was cut."""
    shutil.copytree(tiny_run[0], path)
    config = json.loads((path / "config.json").read_text())
    config["rsrl"]["rounds"], config["protocol"]["folds"] = rounds, folds
    (path / "config.json").write_text(json.dumps(config))
    records = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    kept = [r for r in records if r["round"] <= keep_rounds]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    for r in records[keep_rounds:]:
        shutil.rmtree(path / "fold_0" / f"round_{r['round']:02d}")
        (path / "summary.json").unlink(missing_ok=True)  # killed before the summary
    if folds > 1:  # the data record holds every planned fold
        with np.load(WorkdirFiles(str(path)).identity) as saved:
            arrays = dict(saved)
        for f in range(1, folds):
            arrays.update({f"fold{f}_{p}": arrays[f"fold0_{p}"] for p in identity.PARTS})
        np.savez(WorkdirFiles(str(path)).identity, **arrays)
    return path


@pytest.fixture
def photo(tmp_path):
    scene = synthetic.generate(num_examples=1, image_size=80, seed=3)
    path = tmp_path / "photo.jpg"
    Image.fromarray(scene.images[0]).save(path, quality=95)
    return path


def partial_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "partial run" in r.getMessage()]


def test_predict_on_a_killed_run_picks_among_the_rounds_that_ran(tiny_run, tmp_path, photo):
    workdir = run_cut_back(tiny_run, tmp_path / "run", keep_rounds=1, rounds=2, folds=3)
    assert checkpoints.chosen_round(str(workdir), 0) == 1  # no summary.json: from the records
    with pytest.raises(errors.DataError) as e:
        predict.predict(str(workdir), [str(photo)], round_=2)
    assert str(e.value) == (
        "round 2 of fold 0 did not run (fold 0 has round 1 of rsrl.rounds=2); use one of "
        "those, or, if the run is not still training, run its command again on the workdir "
        "to finish it"
    )
    with pytest.raises(errors.NotFound, match=r": fold 2 did not run \(fold 0 of protocol"):
        predict.predict(str(workdir), [str(photo)], fold=2)
    with pytest.raises(errors.DataError, match="k=1\\), and round 2 of fold 0 did not run"):
        round_pairs.pair_rounds(str(workdir), 0)
    with pytest.raises(errors.DataError, match=r"^round 7 does not exist: the run plans rou"):
        round_pairs.pair_rounds(str(workdir), 0, 7)  # outside the plan
    out = tmp_path / "out.jsonl"
    with caplog_at(logging.WARNING) as caplog, open(out, "w") as f:
        assert predict.predict(str(workdir), [str(photo)], out=f) == 1
    assert json.loads(out.read_text())["round"] == 1
    (warning,) = partial_warnings(caplog)
    assert warning == (
        f"{workdir}: partial run: fold 0 has round 1 of rsrl.rounds=2 (round 2 did not run); "
        "folds 1-2 of protocol.folds=3 did not run; if the run is not still training, run its "
        "command again on the workdir to finish it; using round 1 of fold 0, the best on "
        "validation among the rounds that ran"
    )


def test_readers_of_a_partial_run_check_fold_and_round_against_its_plan(tiny_run, tmp_path):
    """No summary.json needed: a fold or round the run does not plan is told as such."""
    workdir = str(run_cut_back(tiny_run, tmp_path / "run", keep_rounds=1, rounds=2))
    fold_1 = "fold 1 does not exist: the run has folds 0..0 (protocol.folds=1)"
    with pytest.raises(errors.NotFound) as e:
        checkpoints.chosen_round(workdir, 1)  # predict's, embed's and highlight's default
    assert str(e.value) == f"{workdir}: {fold_1}"
    with pytest.raises(errors.NotFound, match=re.escape(fold_1)):
        checkpoints.load_network(workdir, 1, 1)  # an explicit --round
    with pytest.raises(errors.NotFound, match=re.escape(fold_1)):
        round_pairs.pair_rounds(workdir, 1, 2)
    with pytest.raises(errors.DataError) as e:
        checkpoints.load_network(workdir, 0, 3)
    assert str(e.value) == (
        "round 3 does not exist: the run plans rounds 1-2 (rsrl.rounds=2); pick a round in "
        "that range, or leave the round out (the one chosen on validation)"
    )
    (tmp_path / "run" / "config.json").write_text(json.dumps(plan(rounds=1, folds=1)))
    with pytest.raises(errors.DataError, match=r"k=1: the run in .* has only round 1 \(rsrl"):
        round_pairs.pair_rounds(workdir, 0)  # the default pair of a one-round run


def test_highlight_on_a_run_resumed_for_more_rounds_warns(tiny_run, tmp_path, photo):
    workdir = run_cut_back(tiny_run, tmp_path / "run", keep_rounds=2, rounds=3)
    with caplog_at(logging.WARNING) as caplog:
        (line,) = highlight.highlight_photos(str(workdir), [str(photo)], str(tmp_path / "out"))
    assert (line["round_I"], line["round_I_minus_k"]) == (2, 1)
    (warning,) = partial_warnings(caplog)
    assert warning.startswith(
        f"{workdir}: partial run: fold 0 has rounds 1-2 of rsrl.rounds=3 (round 3 did not run)"
    )
    assert warning.endswith(
        "finish it; comparing rounds 2 and 1 of fold 0 (the default: from the best on "
        "validation among the rounds that ran)"
    )
    with pytest.raises(errors.DataError, match="^round 3 of fold 0 did not run"):
        round_pairs.pair_rounds(str(workdir), 0, 3)


class caplog_at:
    """absl's warnings, captured (absl's logger does not reach pytest's caplog handler)."""

    def __init__(self, level):
        self.level, self.records = level, []

    def __enter__(self):
        self.handler = logging.Handler(self.level)
        self.handler.emit = self.records.append
        logging.getLogger("absl").addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        logging.getLogger("absl").removeHandler(self.handler)


def test_compare_names_a_partial_method_and_marks_its_rows():
    full = [
        {**record(f, r, 0.2 + r / 10, 0.2 + r / 20), "steps": 10} for f in (0, 1) for r in (1, 2)
    ]
    summaries = {
        "plain": compare_table.method_summary(full, 2),
        "rsrl": compare_table.method_summary([r for r in full if r["fold"] == 0], 2),
    }
    line = completeness.of_records(ran({0: range(1, 3)}), plan(rounds=2, folds=2)).line()
    config = base_config()
    table = compare_table.markdown(summaries, [3, 4, 5, 6, 7], config, True, {"rsrl": line})
    assert f"`rsrl`: {line}." in table
    rows = [row for row in table.splitlines() if row.startswith("| rsrl")]
    assert len(rows) == 3 and all(row.startswith("| rsrl (partial) |") for row in rows)
    assert all(not row.startswith("| plain (partial)") for row in table.splitlines())


def test_study_marks_partial_runs_and_counts_the_pairs_a_difference_rests_on():
    folds = {0: range(1, 3), 1: range(1, 3)}
    whole = [record(f, r, 0.2 + r / 10, 0.2 + f / 20) for f, rs in folds.items() for r in rs]
    by_seed = {0: whole, 1: whole}
    short = {0: whole, 1: [r for r in whole if r["fold"] == 0]}  # seed 1: fold 1 did not run
    records = {0.1: {"plain": by_seed, "rsrl": short}}
    extents = {
        (0.1, s, m): completeness.of_records(rs[s], plan(rounds=2, folds=2))
        for m, rs in records[0.1].items()
        for s in (0, 1)
    }
    out = {
        "seeds": [0, 1],
        "label_noise": [0.1],
        "methods": {"plain": {}, "rsrl": {}},
        "equal_steps": True,
        "confidence": 0.95,
        "noise": study.summarize(records, 2),
        **study.partial_runs(extents, 2),
    }
    assert out["units_planned"] == 4 and len(out["partial_runs"]) == 1
    config = ml_collections.ConfigDict(base_config().to_dict())
    table = study.markdown(out, config)
    assert "`noise_0.1/seed_1/rsrl`: partial run: fold 1 of protocol.folds=2 did not run" in table
    assert any(row.startswith("| rsrl (partial) |") for row in table.splitlines())
    diff = next(row for row in table.splitlines() if row.startswith("| − plain |"))
    assert "(n=3 of 4)" in diff
