"""A run on embeddings is a run like any other, through the commands: compare's methods over
folds and RSRL rounds, its report, predict on a new embeddings file, resume after a kill;
highlight maps are skipped with their reason, and every mistake is one line."""

import json

import numpy as np
import pytest
from test_cli_errors import error_lines, run_together
from test_resume import assert_same_params, kill_at, round_params

from conftest import read_records
from rsrl_jax.data import embeddings

CONFIG = "configs/embeddings.py"
DIM = 8


def overrides(emb_dir) -> dict:
    """A small MLP, 2 folds of 2 short RSRL rounds: seconds."""
    return {
        "data.dir": emb_dir,
        "protocol.folds": 2,
        "rsrl.rounds": 2,
        "rsrl.thresholds": "(0.6,0.6,0.6)",
        "train.first_round_epochs": 2,
        "train.epochs_per_round": 4,
        "train.batch_size": 16,
        "train.eval_batch_size": 64,
        "model.hidden_widths": "(32,)",
    }


def vectors(n: int, seed: int, scores=None):
    """Feature vectors [n, DIM] of 4 imbalanced, overlapping classes (scores 2..5)."""
    rng = np.random.default_rng(seed)
    if scores is None:
        scores = rng.choice([2, 3, 4, 5], n, p=[0.1, 0.3, 0.4, 0.2])
    centers = np.random.default_rng(7).normal(0, 2, (6, DIM))
    return (centers[scores] + rng.normal(size=(n, DIM))).astype(np.float32), scores


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """(compare's workdir, its stderr, the embeddings folder): plain and rsrl compared."""
    root = tmp_path_factory.mktemp("embeddings_run")
    x, scores = vectors(200, seed=0)
    emb_dir = root / "emb"
    embeddings.write(str(emb_dir), x, [f"photo_{i}.jpg" for i in range(len(x))], scores)
    workdir = root / "compare"
    cmd = ["rsrl_jax.compare", f"--config={CONFIG}", f"--workdir={workdir}"]
    # One run at a time: the killed run below is held to compare's rsrl run bit for bit, and
    # lanes agree with a run alone to float rounding only (tests/test_lanes.py).
    cmd += ["--methods=plain,rsrl", "--lanes=1"]
    cmd += [f"--config.{k}={v}" for k, v in overrides(emb_dir).items()]
    (result,) = run_together({"compare": cmd}).values()
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, result.stderr, emb_dir


def test_compare_runs_every_method_over_folds_and_rounds_and_reports(compared):
    workdir, stderr, _ = compared
    for method in ("plain", "rsrl"):
        records = read_records(workdir / method)
        assert [(r["fold"], r["round"]) for r in records] == [(0, 1), (0, 2), (1, 1), (1, 2)]
        assert sum(r["test"]["num_examples"] for r in records if r["round"] == 1) == 200
        report = (workdir / method / "report" / "report.md").read_text()
        assert "None: the network reads embeddings (data.name='embeddings'" in report
        assert not list((workdir / method / "report").glob("highlights_fold*.png"))
    assert "highlight panels skipped: the network reads embeddings" in stderr
    assert (workdir / "compare.md").exists()
    rsrl = read_records(workdir / "rsrl")
    assert any(r["train_size"] < 100 for r in rsrl if r["round"] == 2)  # RSRL selected


def test_predict_on_a_new_file_and_the_one_line_mistakes(compared, tmp_path):
    workdir, _, emb_dir = compared
    run = workdir / "rsrl"
    x, _ = vectors(5, seed=1, scores=np.array([2, 3, 4, 5, 3]))
    x[2, 1] = np.nan
    new = tmp_path / "new"
    embeddings.write(str(new), x, [f"new_{i}.jpg" for i in range(5)])  # no scores: predict only
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, embeddings=np.ones((3, DIM + 1), np.float32))
    empty = tmp_path / "empty"
    empty.mkdir()
    main = ["rsrl_jax.main", f"--config={CONFIG}", f"--workdir={tmp_path / 'w'}"]
    results = run_together(
        {
            "predict": ["rsrl_jax.predict", f"--workdir={run}", new, wrong],
            "highlight": ["rsrl_jax.highlight", f"--workdir={run}", f"--out={tmp_path}", "a.jpg"],
            "embed": ["rsrl_jax.embed", f"--weights={run}", f"--out={tmp_path}", emb_dir],
            "missing": [*main, f"--config.data.dir={empty}"],
            "alexnet": [*main, f"--config.data.dir={emb_dir}", "--config.model.name=alexnet"],
        }
    )
    predict = results["predict"]
    assert predict.returncode == 0, predict.stderr[-3000:]
    lines = [json.loads(line) for line in predict.stdout.splitlines()]
    assert [(line["path"], line.get("row"), line.get("id")) for line in lines] == [
        *[(str(new), i, f"new_{i}.jpg") for i in range(5)],
        (str(wrong), None, None),
    ]
    chosen = json.loads((run / "summary.json").read_text())["folds"][0]["chosen_round"]
    for line in lines[:2] + lines[3:5]:
        assert set(line["probabilities"]) == {"2", "3", "4", "5"} and line["round"] == chosen
        assert line["score"] in (2, 3, 4, 5) and 2 <= line["expected_score"] <= 5
    assert lines[2]["error"] == "1 of the 8 values of embeddings[2] are NaN or infinite"
    assert lines[5]["error"].endswith(
        "has 9 values a row, but this network reads 8: embed "
        "the photos with the backbone of the run's own embeddings"
    )
    expected = {
        "highlight": (1, f"error: {run}: no highlight regions: the network reads embeddings "),
        "embed": (2, f"error: --weights={run}: a run on embeddings (data.name='embeddings'): "),
        "missing": (1, f"error: {empty / 'embeddings.npz'}: missing; data.name='embeddings' "),
        "alexnet": (2, "error: --config.model.name='alexnet': AlexNet reads photos, but "),
    }
    for name, (code, start) in expected.items():
        result = results[name]
        assert result.returncode == code, (name, result.stderr[-3000:])
        assert "Traceback" not in result.stderr
        (line,) = error_lines(result.stderr)
        assert line.startswith(start), (name, line)


def test_a_run_killed_mid_round_resumes_to_the_same_results(compared, tmp_path):
    """compare's rsrl run is the reference: the same config (compare's equal-steps budget),
    saved at round ends only; the killed run saves after every step and runs fold 0 only
    (protocol.max_folds, which changes no result)."""
    workdir, _, emb_dir = compared
    reference = workdir / "rsrl"
    killed = {
        **overrides(emb_dir),
        "train.epoch_samples": "all",
        "checkpoint.every_steps": 1,
        "protocol.max_folds": 1,
    }
    run = tmp_path / "killed"
    kill_at(run, killed, "fold 0 round 2 epoch 1/4", config=CONFIG)
    assert len(read_records(run)) == 1  # round 1 done, round 2 under way
    (result,) = run_together(
        {
            "resume": ["rsrl_jax.main", f"--config={CONFIG}", f"--workdir={run}"]
            + [f"--config.{k}={v}" for k, v in killed.items()]
        }
    ).values()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fold 0 round 2: resuming at epoch" in result.stderr
    fold_0 = [r for r in read_records(reference) if r["fold"] == 0]
    assert read_records(run) == fold_0
    assert_same_params(round_params(run, [1, 2]), round_params(reference, [1, 2]))
